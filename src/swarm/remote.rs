//! Real servers need real files: before the load, check that RETR has files to read and STOR
//! a directory to write (optionally uploading synthetic files with `--prepare`); after it,
//! remove everything the run created. A missing file or unwritable directory is one clear
//! error before the load, not thousands of failed transfers.

use super::files::{join, FilePlan, RemoteFile, RetrSource};
use crate::ftp::{ClientConfig, ClientError, ConnectTimes, ControlConnection};
use crate::profile::Profile;
use crate::server::storage::synthetic_name;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;

/// Most RETR files we size with SIZE when listing a directory.
const MAX_POOL: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot log in to {target}: {error}")]
    Login { target: String, error: ClientError },
    #[error("{what}: {error}")]
    Step { what: String, error: ClientError },
    #[error("{0}")]
    Missing(String),
}

/// What the run created on the server, so cleanup removes that and nothing else.
#[derive(Debug, Clone, Default)]
pub struct Created {
    pub files: Vec<String>,
    pub dirs: Vec<String>,
}

pub struct Prepared {
    pub files: FilePlan,
    pub created: Created,
    /// The server's greeting, as the preflight connection saw it.
    pub greeting: String,
}

async fn connect(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    target: &str,
) -> Result<ControlConnection, PrepareError> {
    let mut times = ConnectTimes::default();
    let mut conn = ControlConnection::open(config.clone(), addr, None, &mut times)
        .await
        .map_err(|error| PrepareError::Login {
            target: target.to_string(),
            error,
        })?;
    conn.login().await.map_err(|error| PrepareError::Login {
        target: target.to_string(),
        error,
    })?;
    Ok(conn)
}

fn step(what: impl Into<String>) -> impl FnOnce(ClientError) -> PrepareError {
    let what = what.into();
    move |error| PrepareError::Step { what, error }
}

/// Checks (and with `prepare`, creates) what the profile's transfers need on a real server.
pub async fn prepare(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    target: &str,
    profile: &Profile,
    run_tag: &str,
    upload_pool: bool,
) -> Result<Prepared, PrepareError> {
    let mut conn = connect(config, addr, target).await?;
    let remote = &profile.remote;
    let mut created = Created::default();

    let retr = if profile.mix.retr == 0 {
        RetrSource::Pool(Vec::new())
    } else if upload_pool {
        if conn
            .ensure_dir(&remote.retr_dir)
            .await
            .map_err(step(format!("cannot create retr_dir {:?}", remote.retr_dir)))?
        {
            created.dirs.push(remote.retr_dir.clone());
        }
        let mut rng = StdRng::seed_from_u64(profile.seed ^ 0x009E_9A5E);
        let mut sizes: Vec<u64> = (0..remote.prepare_files)
            .map(|_| profile.file_size.sample(&mut rng))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut pool = Vec::with_capacity(sizes.len());
        for size in sizes {
            let path = join(
                &remote.retr_dir,
                &format!("ftpswarm-{run_tag}-{}", synthetic_name(size)),
            );
            conn.upload_file(&path, size)
                .await
                .map_err(step(format!("--prepare could not upload {path:?}")))?;
            created.files.push(path.clone());
            pool.push(RemoteFile { path, size: Some(size) });
        }
        RetrSource::Pool(pool)
    } else {
        let paths = if remote.retr_files.is_empty() {
            conn.list_names(&remote.retr_dir).await.map_err(step(format!(
                "cannot list retr_dir {:?} (run with --prepare to create it with synthetic files)",
                remote.retr_dir
            )))?
        } else {
            remote.retr_files.clone()
        };
        let mut pool = Vec::new();
        for path in paths.into_iter().take(MAX_POOL) {
            let size = conn.size(&path).await.map_err(step(format!("SIZE {path}")))?;
            if size.is_none() && !remote.retr_files.is_empty() {
                return Err(PrepareError::Missing(format!(
                    "remote.retr_files names {path:?}, which the server says is not a readable file"
                )));
            }
            // NLST also names directories; SIZE fails on those, so they drop out here.
            if size.is_some() || !remote.retr_files.is_empty() {
                pool.push(RemoteFile { path, size });
            }
        }
        if pool.is_empty() {
            return Err(PrepareError::Missing(format!(
                "no files to RETR in {:?} on {target}; run with --prepare to upload synthetic files, or set remote.retr_files",
                remote.retr_dir
            )));
        }
        pool.sort_by_key(|f| f.size.unwrap_or(u64::MAX));
        RetrSource::Pool(pool)
    };

    if profile.mix.stor > 0 {
        if conn
            .ensure_dir(&remote.stor_dir)
            .await
            .map_err(step(format!("cannot create stor_dir {:?}", remote.stor_dir)))?
        {
            created.dirs.push(remote.stor_dir.clone());
        }
        let probe = join(&remote.stor_dir, &format!("ftpswarm-{run_tag}-probe.bin"));
        conn.upload_file(&probe, 1).await.map_err(step(format!(
            "cannot write into stor_dir {:?} (tried {probe:?})",
            remote.stor_dir
        )))?;
        conn.delete(&probe)
            .await
            .map_err(step(format!("cannot delete {probe:?} in stor_dir")))?;
    }
    let greeting = conn.greeting().to_string();
    conn.quit().await;
    Ok(Prepared {
        greeting,
        files: FilePlan {
            retr,
            stor_dir: remote.stor_dir.clone(),
            list_dir: remote.list_dir.clone(),
            run_tag: run_tag.to_string(),
        },
        created,
    })
}

/// Removes the files the run stored and what `prepare` created. Returns how many removals
/// failed (a file whose STOR failed may legitimately not exist).
pub async fn cleanup(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    target: &str,
    stored: &[String],
    created: &Created,
) -> Result<usize, PrepareError> {
    if stored.is_empty() && created.files.is_empty() && created.dirs.is_empty() {
        return Ok(0);
    }
    let mut conn = connect(config, addr, target).await?;
    let mut failures = 0;
    for path in stored.iter().chain(&created.files) {
        match conn.delete(path).await {
            Ok(()) => {}
            Err(e) if e.control_lost => {
                return Err(PrepareError::Step {
                    what: format!("cleanup stopped at {path:?}"),
                    error: e,
                });
            }
            Err(_) => failures += 1,
        }
    }
    for dir in created.dirs.iter().rev() {
        if conn.remove_dir(dir).await.is_err() {
            failures += 1;
        }
    }
    conn.quit().await;
    Ok(failures)
}
