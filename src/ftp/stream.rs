//! The bytes under the protocol: plain TCP, or TLS once AUTH TLS (or implicit FTPS) has
//! secured the control connection and PROT P the data connections.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, ReadHalf, WriteHalf};
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

/// Receives up to `max` bytes of a plain TCP data connection and drops them in the kernel
/// (Linux's MSG_TRUNC on TCP): a download's bytes are counted, never copied to user space.
/// Returns 0 at the end of the stream, as a read does.
pub async fn discard(tcp: &TcpStream, max: usize) -> io::Result<usize> {
    loop {
        tcp.readable().await?;
        let received = tcp.try_io(Interest::READABLE, || {
            // SAFETY: with MSG_TRUNC a TCP socket discards the bytes instead of copying them,
            // so the kernel never writes through the null buffer (were it to try, recv would
            // fail with EFAULT rather than write anywhere). The descriptor is the stream's own
            // and open for the duration of the call.
            let n = unsafe { libc::recv(tcp.as_raw_fd(), std::ptr::null_mut(), max, libc::MSG_TRUNC) };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        });
        match received {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn discarding_counts_every_byte_and_then_the_end() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // More than one receive's worth, in uneven writes.
            for chunk in [1usize, 4096, 100_000, 3_000_000] {
                s.write_all(&vec![7u8; chunk]).await.unwrap();
            }
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut total = 0;
        let mut calls = 0;
        loop {
            let n = discard(&tcp, 1 << 20).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= 1 << 20);
            total += n;
            calls += 1;
        }
        sender.await.unwrap();
        assert_eq!(total, 1 + 4096 + 100_000 + 3_000_000);
        assert!(calls >= 3, "{calls}");
    }
}
