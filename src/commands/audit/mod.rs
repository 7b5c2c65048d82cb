//! `kube-dc audit …`: `list` (and its exports: `export` for the streamed
//! CSV, `cursor` for incremental exports), `verify` for exported files (with `checkpoint`, signed
//! checkpoints they must reach; `follow` the live feed, `ocsf` its SIEM
//! shape);
//! `time` reads and shows the event times they share.

mod checkpoint;
mod cursor;
mod export;
mod filter;
mod follow;
mod list;
mod ocsf;
mod reach;
mod time;
mod verify;

use clap::Subcommand;

use crate::commands::Session;
use crate::error::Result;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    List(Box<list::ListArgs>),
    Verify(verify::VerifyArgs),
    Checkpoint(checkpoint::CheckpointArgs),
}

pub async fn run(ctx: &Session, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List(a) => list::run(ctx, *a).await,
        AuditCommand::Verify(a) => verify::run(ctx, a),
        AuditCommand::Checkpoint(a) => checkpoint::run(ctx, a).await,
    }
}
