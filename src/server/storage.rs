//! A storage back end with no disk: RETR of `size-<bytes>.bin` streams that many bytes, STOR
//! drains and counts, LIST shows a small fixed tree. The embedded server then measures the
//! protocol and the passive ports, not a file system.

use async_trait::async_trait;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::AsyncReadExt;
use unftp_core::auth::DefaultUser;
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, Result, StorageBackend};

/// Counters the server keeps, so tests can check the client's figures against the server's.
#[derive(Debug, Default)]
pub struct StorageStats {
    pub retr_files: AtomicU64,
    pub retr_bytes: AtomicU64,
    pub stor_files: AtomicU64,
    pub stor_bytes: AtomicU64,
    pub lists: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct SyntheticStorage {
    stats: Arc<StorageStats>,
}

impl SyntheticStorage {
    pub fn new(stats: Arc<StorageStats>) -> Self {
        SyntheticStorage { stats }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SyntheticMeta {
    len: u64,
    dir: bool,
}

impl Metadata for SyntheticMeta {
    fn len(&self) -> u64 {
        self.len
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> Result<SystemTime> {
        Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
    }
    fn gid(&self) -> u32 {
        1000
    }
    fn uid(&self) -> u32 {
        1000
    }
}

/// The size a synthetic file name encodes: `size-65536.bin` (in any directory) is 65536 bytes.
pub fn synthetic_size(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("size-")?.strip_suffix(".bin")?.parse().ok()
}

/// The remote name of a synthetic file of `bytes` bytes.
pub fn synthetic_name(bytes: u64) -> String {
    format!("size-{bytes}.bin")
}

/// What LIST shows: a couple of directories and files of typical sizes.
const LISTING: &[(&str, u64, bool)] = &[
    ("data", 0, true),
    ("scratch", 0, true),
    ("size-1024.bin", 1024, false),
    ("size-65536.bin", 65536, false),
    ("size-1048576.bin", 1_048_576, false),
    ("size-10485760.bin", 10_485_760, false),
];

#[async_trait]
impl StorageBackend<DefaultUser> for SyntheticStorage {
    type Metadata = SyntheticMeta;

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<Self::Metadata> {
        Ok(match synthetic_size(path.as_ref()) {
            Some(len) => SyntheticMeta { len, dir: false },
            None => SyntheticMeta { len: 0, dir: true },
        })
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        _path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Self::Metadata>>> {
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        Ok(LISTING
            .iter()
            .map(|&(name, len, dir)| Fileinfo {
                path: PathBuf::from(name),
                metadata: SyntheticMeta { len, dir },
            })
            .collect())
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        let len = synthetic_size(path.as_ref()).ok_or_else(|| Error::from(ErrorKind::PermanentFileNotAvailable))?;
        let remaining = len.saturating_sub(start_pos);
        self.stats.retr_files.fetch_add(1, Ordering::Relaxed);
        self.stats.retr_bytes.fetch_add(remaining, Ordering::Relaxed);
        Ok(Box::new(tokio::io::repeat(0x5a).take(remaining)))
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        _user: &DefaultUser,
        mut input: R,
        _path: P,
        _start_pos: u64,
    ) -> Result<u64> {
        let n = tokio::io::copy(&mut input, &mut tokio::io::sink())
            .await
            .map_err(Error::from)?;
        self.stats.stor_files.fetch_add(1, Ordering::Relaxed);
        self.stats.stor_bytes.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, _path: P) -> Result<()> {
        Ok(())
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, _path: P) -> Result<()> {
        Ok(())
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, _from: P, _to: P) -> Result<()> {
        Ok(())
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, _path: P) -> Result<()> {
        Ok(())
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, _path: P) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_sizes() {
        assert_eq!(synthetic_size(Path::new("/a/b/size-123.bin")), Some(123));
        assert_eq!(synthetic_size(Path::new(&synthetic_name(4096))), Some(4096));
        for bad in ["size-.bin", "size-12.txt", "x-12.bin", "size--1.bin", "/"] {
            assert_eq!(synthetic_size(Path::new(bad)), None, "{bad}");
        }
    }
}
