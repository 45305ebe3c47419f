//! USER / PASS / TYPE I, and on FTPS PBSZ 0 / PROT P (TLS on every data connection).

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
        if self.tls.is_some() {
            self.protect_data().await?;
        }
        Ok(())
    }

    /// PBSZ 0 then PROT P (RFC 4217): data connections are TLS too. A server that refuses is
    /// a `tls_error`: plaintext data would defeat the point of FTPS and measure another load.
    async fn protect_data(&mut self) -> Result<(), ClientError> {
        for command in ["PBSZ 0", "PROT P"] {
            let reply = self.command(command, Phase::Tls).await?;
            if !reply.is_completion() {
                return Err(ClientError {
                    control_lost: false,
                    ..ClientError::tls(format!("{command} answered {reply}"))
                });
            }
        }
        Ok(())
    }
}
