//! Reads from replicas on a real Redis Cluster.

use std::time::{Duration, Instant};

use store::connection::{self, ReadFrom};
use store::RedisTarget;
use testkit::{key_slot, Backend, TestRedis};

/// Calls of `command` a node has served.
fn calls(stats: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    stats.lines().find_map(|line| line.strip_prefix(&prefix)?.split(',').next()?.parse().ok()).unwrap_or(0)
}

/// `ReadFrom::Replicas` sends writes to the key's master and reads to its
/// replica, also when the replica joined after the connection was made: a
/// fresh cluster's replicas are not listed by `CLUSTER SLOTS` until they
/// have synced, and the client would never learn of them without the
/// watcher (every read went to the masters, found by the test of the live
/// feed with `REDIS_MIN_REPLICAS=1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_connection_reads_from_the_replica_once_it_has_synced() {
    let mut redis = TestRedis::start(Backend::Cluster);
    let cluster = redis.cluster();
    let target = RedisTarget::cluster(&cluster.seeds()).unwrap();
    let mut conn = connection::connect_reading(&target, ReadFrom::Replicas).unwrap();
    let key = "{p01}:replica-reads";
    let master = cluster.master_of_slot(key_slot(key));
    let replica = cluster.replicas_of(master)[0];
    let _: String = redis::cmd("XADD").arg(key).arg("*").arg("f").arg("v").query_async(&mut conn).await.unwrap();
    let _: redis::Value = redis::cmd("WAIT").arg(1).arg(1000).query_async(&mut conn).await.unwrap();

    let started = Instant::now();
    loop {
        let read: redis::streams::StreamReadReply =
            redis::cmd("XREAD").arg("STREAMS").arg(key).arg("0").query_async(&mut conn).await.unwrap();
        assert_eq!(read.keys[0].ids.len(), 1, "the replica has the entry");
        if calls(&cluster.cli_at(replica, &["INFO", "commandstats"]), "xread") > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no read reached the replica within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("reads reached the replica {:?} after the write", started.elapsed());
    assert_eq!(calls(&cluster.cli_at(replica, &["INFO", "commandstats"]), "xadd"), 1, "replicated, not written there");
    let master_reads = calls(&cluster.cli_at(master, &["INFO", "commandstats"]), "xread");
    for _ in 0..5 {
        let _: redis::Value =
            redis::cmd("XREAD").arg("STREAMS").arg(key).arg("0").query_async(&mut conn).await.unwrap();
    }
    assert_eq!(
        calls(&cluster.cli_at(master, &["INFO", "commandstats"]), "xread"),
        master_reads,
        "reads stay on the replica"
    );
}
