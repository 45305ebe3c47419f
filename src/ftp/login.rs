//! USER / PASS / TYPE I.

use super::{ClientError, ControlConnection, Phase};

impl ControlConnection {
    /// Logs in and switches to binary mode, as every real client does before transfers.
    pub async fn login(&mut self) -> Result<(), ClientError> {
        let user = format!("USER {}", self.config.user);
        let reply = self.command(&user, Phase::Login).await?;
        match reply.code {
            230 => {}
            331 | 332 => {
                let pass = format!("PASS {}", self.config.password.expose());
                let reply = self.command(&pass, Phase::Login).await?;
                if !matches!(reply.code, 230 | 202) {
                    return Err(ClientError::reply(Phase::Login, &reply));
                }
            }
            _ => return Err(ClientError::reply(Phase::Login, &reply)),
        }
        let reply = self.command("TYPE I", Phase::Login).await?;
        if !reply.is_completion() {
            return Err(ClientError::reply(Phase::Login, &reply));
        }
        Ok(())
    }
}
