//! NOOP: whether the server still serves this control connection.

use super::{ControlConnection, Phase};

/// Replies read past before a connection that answers only errors counts as gone: a dying
/// server may send its last words first (vsftpd: two `500 OOPS` lines, one per process).
const REPLIES_BEFORE_GIVING_UP: usize = 4;

impl ControlConnection {
    /// NOOP until a positive reply (alive) or a closed connection (gone). A refusal alone does
    /// not say whether the server kept the session: vsftpd answers a PASV it cannot bind with
    /// `500 OOPS` and ends the session, ProFTPD and Pure-FTPd answer 425 and keep it.
    pub async fn alive(&mut self) -> bool {
        if self.send("NOOP", Phase::Housekeeping).await.is_err() {
            return false;
        }
        for _ in 0..REPLIES_BEFORE_GIVING_UP {
            match self.read_reply(Phase::Housekeeping).await {
                Ok(r) if r.is_completion() => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}
