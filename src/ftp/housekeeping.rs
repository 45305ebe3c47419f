//! Commands that prepare and clean a real server around a run (never part of the measured
//! load): MKD, DELE, RMD, NLST, SIZE.

use super::transfer::{TransferIds, TransferRequest};
use super::{ClientError, ControlConnection, Phase};
use crate::event::TransferCommand;

/// Most bytes of a directory listing we keep (a listing is names, one per line).
const MAX_LISTING_BYTES: usize = 4 * 1024 * 1024;

const HOUSEKEEPING_IDS: TransferIds = TransferIds {
    session_id: 0,
    connection_id: 0,
    seq_in_session: 0,
};

impl ControlConnection {
    /// Creates `dir` unless it exists. Returns whether we created it (so cleanup removes
    /// only what the run made).
    pub async fn ensure_dir(&mut self, dir: &str) -> Result<bool, ClientError> {
        let reply = self.command(&format!("MKD {dir}"), Phase::Housekeeping).await?;
        if reply.code == 257 {
            return Ok(true);
        }
        // MKD of an existing directory fails with 550 on every server we know; tell that
        // apart from "not allowed" by asking the server to enter it.
        let pwd = self.command("PWD", Phase::Housekeeping).await?;
        let cwd = self.command(&format!("CWD {dir}"), Phase::Housekeeping).await?;
        if !cwd.is_completion() {
            return Err(ClientError::reply(Phase::Housekeeping, &reply));
        }
        if let Some(home) = quoted_path(&pwd.text) {
            let back = self.command(&format!("CWD {home}"), Phase::Housekeeping).await?;
            if !back.is_completion() {
                return Err(ClientError::reply(Phase::Housekeeping, &back));
            }
        }
        Ok(false)
    }

    pub async fn delete(&mut self, path: &str) -> Result<(), ClientError> {
        self.expect_completion(&format!("DELE {path}")).await
    }

    pub async fn remove_dir(&mut self, dir: &str) -> Result<(), ClientError> {
        self.expect_completion(&format!("RMD {dir}")).await
    }

    async fn expect_completion(&mut self, command: &str) -> Result<(), ClientError> {
        let reply = self.command(command, Phase::Housekeeping).await?;
        if reply.is_completion() {
            Ok(())
        } else {
            Err(ClientError::reply(Phase::Housekeeping, &reply))
        }
    }

    /// Size of a remote file (RFC 3659 SIZE), `None` when the server will not say.
    pub async fn size(&mut self, path: &str) -> Result<Option<u64>, ClientError> {
        let reply = self.command(&format!("SIZE {path}"), Phase::Housekeeping).await?;
        Ok((reply.code == 213).then(|| reply.text.trim().parse().ok()).flatten())
    }

    /// Names in `dir` (NLST), as paths the server accepts back.
    pub async fn list_names(&mut self, dir: &str) -> Result<Vec<String>, ClientError> {
        let req = TransferRequest {
            command: TransferCommand::List,
            path: dir.to_string(),
            bytes: None,
        };
        let mut buf = Vec::new();
        let out = self
            .transfer_collecting(
                &req,
                HOUSEKEEPING_IDS,
                Some("NLST"),
                Some((&mut buf, MAX_LISTING_BYTES)),
            )
            .await;
        if let Some(class) = out.event.outcome.failure() {
            return Err(ClientError {
                class,
                reply_code: out.event.final_reply_code.or(out.event.transfer_reply_code),
                detail: out.event.detail,
                control_lost: out.control_lost,
            });
        }
        let text = String::from_utf8_lossy(&buf);
        let prefix = dir.trim_end_matches('/');
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "." && *l != "..")
            .map(|name| {
                // Some servers answer NLST with bare names, others with dir/name.
                if name.contains('/') || prefix.is_empty() || prefix == "." {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                }
            })
            .collect())
    }

    /// Uploads `bytes` bytes to `path` (used by `--prepare`).
    pub async fn upload_file(&mut self, path: &str, bytes: u64) -> Result<(), ClientError> {
        let req = TransferRequest {
            command: TransferCommand::Stor,
            path: path.to_string(),
            bytes: Some(bytes),
        };
        let out = self.transfer(&req, HOUSEKEEPING_IDS).await;
        match out.event.outcome.failure() {
            None => Ok(()),
            Some(class) => Err(ClientError {
                class,
                reply_code: out.event.final_reply_code.or(out.event.transfer_reply_code),
                detail: out.event.detail,
                control_lost: out.control_lost,
            }),
        }
    }
}

/// The path inside a 257 reply: `"/home/ftp" is the current directory` (quotes doubled).
fn quoted_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                out.push('"');
                chars.next();
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::quoted_path;

    #[test]
    fn pwd_paths() {
        assert_eq!(
            quoted_path("\"/home/ftp\" is the current directory").as_deref(),
            Some("/home/ftp")
        );
        assert_eq!(quoted_path("\"/a \"\"b\"\"\" ok").as_deref(), Some("/a \"b\""));
        assert_eq!(quoted_path("no quotes"), None);
        assert_eq!(quoted_path("\"unterminated"), None);
    }
}
