//! Step 2: does the server answer EPSV (RFC 2428) with 229?

use super::link::{quit_and_wait, release, Link};
use crate::ftp::passive::PassiveGrant;
use crate::ftp::reply::parse_epsv_reply;
use crate::ftp::Phase;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Epsv {
    /// `None` when the step could not run (the detail says why).
    pub supported: Option<bool>,
    pub code: Option<u16>,
    pub text: String,
}

pub(crate) async fn check(link: &Link) -> Epsv {
    let mut conn = match link.open().await {
        Ok(c) => c,
        Err(e) => {
            return Epsv {
                supported: None,
                code: None,
                text: format!("could not log in: {e}"),
            }
        }
    };
    // Sent by hand rather than through the client's passive request, which sends whatever
    // the probe was told to use.
    let result = match conn.command("EPSV", Phase::Passive).await {
        Ok(reply) => {
            let port = (reply.code == 229).then(|| parse_epsv_reply(&reply.text)).flatten();
            if let Some(port) = port {
                // A 229 leaves a port pending: release it like any other.
                let grant = PassiveGrant {
                    port,
                    reply_code: 229,
                    announced_ip: None,
                    data_addr: SocketAddr::new(conn.peer().ip(), port),
                };
                let _ = release(&mut conn, &grant).await;
            }
            Epsv {
                supported: Some(port.is_some()),
                code: Some(reply.code),
                text: reply.short_text(),
            }
        }
        Err(e) => Epsv {
            supported: None,
            code: e.reply_code,
            text: e.to_string(),
        },
    };
    quit_and_wait(conn).await;
    result
}
