//! The faults: each is made on the deployment, held, and healed, while the
//! workload runs. Most aim at one partition (that of the run's first
//! product): its master, or a server's link to it.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::deployment::{Deployment, NODE_TIMEOUT};

/// How long a cut or a pause lasts: several node timeouts, so the cluster
/// fails over while it lasts.
const HOLD: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Nothing: the workload alone, for comparison.
    None,
    /// The partition's master cut off from everyone (its link down) while
    /// its replica takes over; then joined again, as a replica now.
    IsolateMaster,
    /// The partition's master and the first server split from the rest (the
    /// clients still reach that server): a minority that keeps taking writes
    /// for a while.
    SplitMasterWithServer,
    /// The partition's master SIGSTOPped for longer than the node timeout:
    /// it wakes up still believing it is master.
    PauseMaster,
    /// The partition's master killed (kill -9), then started again from its
    /// append-only file.
    KillMaster,
    /// The first server cut off from the partition's master only.
    CutServerFromMaster,
    /// The first workers process killed (kill -9), then started again.
    KillWorkers,
    /// The partition's slot moved to another master while a third master is paused.
    MoveSlotWhilePaused,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::None,
        Fault::IsolateMaster,
        Fault::SplitMasterWithServer,
        Fault::PauseMaster,
        Fault::KillMaster,
        Fault::CutServerFromMaster,
        Fault::KillWorkers,
        Fault::MoveSlotWhilePaused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::IsolateMaster => "isolate-master",
            Fault::SplitMasterWithServer => "split-master-with-server",
            Fault::PauseMaster => "pause-master",
            Fault::KillMaster => "kill-master",
            Fault::CutServerFromMaster => "cut-server-from-master",
            Fault::KillWorkers => "kill-workers",
            Fault::MoveSlotWhilePaused => "move-slot-while-paused",
        }
    }

    /// Whether it aims at the partition (for "time to the first success").
    pub fn aims_at_partition(self) -> bool {
        !matches!(self, Fault::None | Fault::KillWorkers)
    }

    /// Makes the fault on the partition served by `slot`, holds it, heals it.
    pub async fn make(self, deployment: &mut Deployment, slot: u16) -> Result<String> {
        let (master, _) = deployment.master_of(slot).await?;
        let master_host = deployment.network.host(&format!("redis{master}")).clone();
        let server1 = deployment.network.host("server1").clone();
        Ok(match self {
            Fault::None => {
                tokio::time::sleep(HOLD).await;
                "nothing".to_string()
            }
            Fault::IsolateMaster => {
                deployment.network.set_linked(&master_host, false)?;
                tokio::time::sleep(HOLD).await;
                deployment.network.set_linked(&master_host, true)?;
                format!("redis{master} (master) cut off for {HOLD:?}")
            }
            Fault::SplitMasterWithServer => {
                deployment.network.set_split(&[&master_host, &server1], true, true)?;
                tokio::time::sleep(HOLD).await;
                deployment.network.set_split(&[&master_host, &server1], true, false)?;
                format!("redis{master} (master) and server1 split from the rest for {HOLD:?}")
            }
            Fault::PauseMaster => {
                let node = &deployment.redis[master - 1];
                node.pause()?;
                tokio::time::sleep(HOLD).await;
                deployment.redis[master - 1].resume()?;
                format!("redis{master} (master) paused for {HOLD:?} (node timeout {NODE_TIMEOUT:?})")
            }
            Fault::KillMaster => {
                deployment.redis[master - 1].kill().await?;
                tokio::time::sleep(HOLD).await;
                deployment.redis[master - 1].restart()?;
                format!("redis{master} (master) killed, started again {HOLD:?} later")
            }
            Fault::CutServerFromMaster => {
                // Only between those two: a route on each side.
                for (from, to) in [(&server1, &master_host), (&master_host, &server1)] {
                    crate::lab::ip(&["-n", &from.netns, "route", "add", "blackhole", &format!("{}/32", to.ip)])?;
                }
                tokio::time::sleep(HOLD).await;
                for (from, to) in [(&server1, &master_host), (&master_host, &server1)] {
                    crate::lab::ip(&["-n", &from.netns, "route", "del", "blackhole", &format!("{}/32", to.ip)])?;
                }
                format!("server1 cut off from redis{master} (master) for {HOLD:?}")
            }
            Fault::KillWorkers => {
                deployment.workers[0].kill().await?;
                tokio::time::sleep(HOLD).await;
                deployment.workers[0].restart()?;
                format!("workers1 killed, started again {HOLD:?} later")
            }
            Fault::MoveSlotWhilePaused => {
                let to = deployment.other_master(master).await?;
                let paused = deployment.other_master_except(&[master, to]).await.context("a third master")?;
                deployment.redis[paused - 1].pause()?;
                let moved = deployment.move_slot(slot, to).await;
                tokio::time::sleep(HOLD).await;
                deployment.redis[paused - 1].resume()?;
                moved?;
                format!("slot {slot} moved from redis{master} to redis{to} while redis{paused} (master) was paused {HOLD:?}")
            }
        })
    }
}
