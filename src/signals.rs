//! SIGINT (Ctrl-C) and SIGTERM (`timeout`, `docker stop`, `kill`): both ask a command to stop
//! loading and write what it has; the second one quits at once. SIGKILL cannot be caught, so
//! the run directory is written as the run goes (see `rundir::records`).

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Exit code of a command that was interrupted but wrote its results, marked partial.
pub const INTERRUPTED_EXIT: u8 = 130;

/// Cancels `interrupt` on the first SIGINT or SIGTERM, printing `message`; exits with
/// [`INTERRUPTED_EXIT`] on the second.
pub fn cancel_on_signal(interrupt: CancellationToken, message: &'static str) {
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("cannot listen for SIGINT/SIGTERM ({e}); an interrupted run loses its last half second");
            return;
        }
    };
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        eprintln!("\n{name}: {message} (again to quit now)");
        interrupt.cancel();
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(i32::from(INTERRUPTED_EXIT));
    });
}

/// A command interrupted before it did anything worth writing.
#[derive(Debug, thiserror::Error)]
#[error("interrupted {0}; nothing was run")]
pub struct InterruptedBefore(pub &'static str);
