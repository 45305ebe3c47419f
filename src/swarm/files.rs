//! Which remote file each transfer touches.

use crate::event::TransferCommand;
use crate::ftp::TransferRequest;
use crate::profile::Profile;
use crate::server::storage::synthetic_name;
use rand::Rng;

/// Where RETR reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum RetrSource {
    /// The embedded server serves any size by name: no pool needed.
    Synthetic { dir: String },
    /// A real server's files, sorted by size (`None` when the server did not say).
    Pool(Vec<RemoteFile>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub size: Option<u64>,
}

impl RetrSource {
    /// The file whose size is nearest to `wanted`.
    pub fn pick(&self, wanted: u64) -> (String, Option<u64>) {
        match self {
            RetrSource::Synthetic { dir } => (join(dir, &synthetic_name(wanted)), Some(wanted)),
            RetrSource::Pool(files) => {
                let sized = files.partition_point(|f| f.size.is_some_and(|s| s < wanted));
                let best = [sized.checked_sub(1), Some(sized)]
                    .into_iter()
                    .flatten()
                    .filter_map(|i| files.get(i))
                    .min_by_key(|f| f.size.map_or(u64::MAX, |s| s.abs_diff(wanted)));
                match best {
                    Some(f) => (f.path.clone(), f.size),
                    None => (String::new(), None),
                }
            }
        }
    }
}

pub fn join(dir: &str, name: &str) -> String {
    match dir.trim_end_matches('/') {
        "" if dir.starts_with('/') => format!("/{name}"),
        "" | "." => name.to_string(),
        d => format!("{d}/{name}"),
    }
}

/// Everything a run needs to name files.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub retr: RetrSource,
    pub stor_dir: String,
    pub list_dir: String,
    /// Makes STOR names unique across runs sharing a scratch directory.
    pub run_tag: String,
}

impl FilePlan {
    /// The transfers of one session, decided before it starts so that the offered load does
    /// not depend on timing.
    pub fn session_requests<R: Rng>(&self, profile: &Profile, session_id: u64, rng: &mut R) -> Vec<TransferRequest> {
        (0..profile.session.files_per_session)
            .map(|seq| {
                let command = profile.mix.pick(rng);
                let size = profile.file_size.sample(rng);
                match command {
                    TransferCommand::Retr => {
                        let (path, bytes) = self.retr.pick(size);
                        TransferRequest { command, path, bytes }
                    }
                    TransferCommand::Stor => TransferRequest {
                        command,
                        path: join(
                            &self.stor_dir,
                            &format!("ftpswarm-{}-s{session_id}-f{seq}.bin", self.run_tag),
                        ),
                        bytes: Some(size),
                    },
                    TransferCommand::List => TransferRequest {
                        command,
                        path: self.list_dir.clone(),
                        bytes: None,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> RetrSource {
        RetrSource::Pool(vec![
            RemoteFile {
                path: "a".into(),
                size: Some(100),
            },
            RemoteFile {
                path: "b".into(),
                size: Some(1000),
            },
            RemoteFile {
                path: "c".into(),
                size: Some(10_000),
            },
        ])
    }

    #[test]
    fn pool_picks_nearest_size() {
        assert_eq!(pool().pick(0).0, "a");
        assert_eq!(pool().pick(500).0, "a");
        assert_eq!(pool().pick(600).0, "b");
        assert_eq!(pool().pick(9_000).0, "c");
        assert_eq!(pool().pick(u64::MAX).0, "c");
    }

    #[test]
    fn unsized_pool_still_picks() {
        let p = RetrSource::Pool(vec![RemoteFile {
            path: "x".into(),
            size: None,
        }]);
        assert_eq!(p.pick(5), ("x".to_string(), None));
    }

    #[test]
    fn synthetic_names_carry_size() {
        let s = RetrSource::Synthetic { dir: "data".into() };
        assert_eq!(s.pick(42), ("data/size-42.bin".to_string(), Some(42)));
    }

    #[test]
    fn joins() {
        assert_eq!(join(".", "f"), "f");
        assert_eq!(join("", "f"), "f");
        assert_eq!(join("/", "f"), "/f");
        assert_eq!(join("d/", "f"), "d/f");
    }
}
