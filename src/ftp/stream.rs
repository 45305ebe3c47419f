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

/// What a plain upload sends: the same bytes every time (content does not matter to the
/// server, only its length), kept once in a memory file so that `sendfile` hands its pages
/// to the socket without copying them from user space. `None` where no memory file can be
/// made (the caller then writes from a buffer).
fn upload_source() -> Option<&'static std::os::fd::OwnedFd> {
    static SOURCE: std::sync::OnceLock<Option<std::os::fd::OwnedFd>> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| make_upload_source().ok()).as_ref()
}

/// Bytes in the upload source: the most one `sendfile` sends.
pub const UPLOAD_SOURCE_BYTES: usize = 1 << 20;
/// The byte every upload repeats.
pub const UPLOAD_BYTE: u8 = 0x5a;

fn make_upload_source() -> io::Result<std::os::fd::OwnedFd> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new descriptor
    // or -1, which is checked before it is owned.
    let fd = unsafe { libc::memfd_create(c"ftpswarm-upload".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    file.write_all(&[UPLOAD_BYTE; UPLOAD_SOURCE_BYTES])?;
    Ok(file.into())
}

/// Sends up to `max` bytes of the upload pattern on a plain TCP data connection, with
/// `sendfile` from the shared upload source (no user-space copy, up to [`UPLOAD_SOURCE_BYTES`] per
/// call), or from a buffer where there is no source. Returns the bytes the socket took.
pub async fn send_pattern(tcp: &TcpStream, max: usize) -> io::Result<usize> {
    static BUFFER: [u8; 64 * 1024] = [UPLOAD_BYTE; 64 * 1024];
    let source = upload_source();
    let len = max.min(if source.is_some() {
        UPLOAD_SOURCE_BYTES
    } else {
        BUFFER.len()
    });
    loop {
        tcp.writable().await?;
        let Some(source) = source else {
            match tcp.try_write(&BUFFER[..len]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        };
        let sent = tcp.try_io(Interest::WRITABLE, || {
            let mut offset: libc::off_t = 0;
            // SAFETY: both descriptors are open for the call (the stream's own, and the
            // source, which lives for the process); `offset` is a valid local the kernel
            // advances, so the source's own file offset is never shared between uploads.
            let n = unsafe { libc::sendfile(tcp.as_raw_fd(), source.as_raw_fd(), &mut offset, len) };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        });
        match sent {
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

    #[tokio::test]
    async fn sending_the_pattern_delivers_exactly_what_was_asked_and_only_the_pattern() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // Across the source's end (one call sends at most its 1 MiB), and a 1-byte tail.
        let want = 3 * UPLOAD_SOURCE_BYTES + 12_345;
        let mut sent = 0;
        while sent < want {
            let n = send_pattern(&tcp, want - sent).await.unwrap();
            assert!(n > 0 && n <= UPLOAD_SOURCE_BYTES && n <= want - sent, "{n}");
            sent += n;
        }
        assert_eq!(send_pattern(&tcp, 1).await.unwrap(), 1);
        tcp.shutdown().await.unwrap();
        let got = receiver.await.unwrap();
        assert_eq!(got.len(), want + 1);
        assert!(got.iter().all(|&b| b == UPLOAD_BYTE));
        // The memory file made it (Linux): the kernel sent from it, not from a buffer.
        assert!(upload_source().is_some());
    }
}
