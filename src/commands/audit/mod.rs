//! `kube-dc audit …`: `list` (and its exports: `export` for the streamed
//! CSV, `cursor` for incremental exports), `verify` for exported files;
//! `time` reads and shows the event times they share.

mod cursor;
mod export;
mod list;
mod time;
mod verify;

use clap::Subcommand;

use crate::commands::Session;
use crate::error::Result;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    List(Box<list::ListArgs>),
    Verify(verify::VerifyArgs),
}

pub async fn run(ctx: &Session, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List(a) => list::run(ctx, *a).await,
        AuditCommand::Verify(a) => verify::run(ctx, a),
    }
}
