//! The bytes under the protocol: plain TCP, or TLS once AUTH TLS (or implicit FTPS) has
//! secured the control connection and PROT P the data connections.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

pub enum ControlRead {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream>),
}

pub enum ControlWrite {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream>),
}

pub enum DataStream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl DataStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, DataStream::Tls(_))
    }
}

macro_rules! delegate_read {
    ($ty:ty, $($variant:ident),+) => {
        impl AsyncRead for $ty {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($ty:ty, $($variant:ident),+) => {
        impl AsyncWrite for $ty {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_flush(cx),)+
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$variant(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

delegate_read!(ControlRead, Plain, Tls);
delegate_write!(ControlWrite, Plain, Tls);
delegate_read!(DataStream, Plain, Tls);
delegate_write!(DataStream, Plain, Tls);
