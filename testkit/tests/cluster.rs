//! `RedisCluster` against real redis-server processes: shape, slots,
//! failover, rejoin and slot migration.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::{key_slot, RedisCluster, Role, SLOTS};

/// One slot's keys, so a whole test works on one master.
const TAG: &str = "{fo}";

#[test]
fn a_cluster_survives_failover_restart_and_migration() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start();
    eprintln!("6-node cluster up in {:?}", started.elapsed());

    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6, "{nodes:#?}");
    let masters: Vec<_> = nodes.iter().filter(|n| n.role == Role::Master).collect();
    assert_eq!(masters.len(), 3, "{nodes:#?}");
    let served: u32 = masters.iter().flat_map(|n| &n.slots).map(|r| u32::from(r.end() - r.start()) + 1).sum();
    assert_eq!(served, u32::from(SLOTS));
    for replica in nodes.iter().filter(|n| n.role == Role::Replica) {
        let master = replica.master_id.as_deref();
        assert!(masters.iter().any(|m| Some(m.id.as_str()) == master), "{replica:?} replicates no master");
    }
    assert_eq!(cluster.seeds().split(',').count(), 6);
    assert!(cluster.seeds().split(',').all(|seed| seed.starts_with("redis://127.0.0.1:")));

    let any = cluster.ports()[0];
    for key in ["foo", "{p07}:order:x", "stockflow:{p00}:orders", "a{}b", "{}{x}", "stockflow:{fo}:x"] {
        let slot = cluster.cli_at(any, &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(slot, key_slot(key).to_string(), "slot of {key:?}");
    }

    // -c follows the MOVED to whichever master serves the key.
    let key = format!("stockflow:{TAG}:x");
    assert_eq!(cluster.cli(&["SET", &key, "before"]), "OK");
    assert_eq!(cluster.cli(&["GET", &key]), "before");

    // Move the slot somewhere else, keys and all.
    let slot = key_slot(&key);
    let from = cluster.master_of_slot(slot);
    let to = masters.iter().map(|m| m.port).find(|&p| p != from).expect("another master");
    for i in 0..5 {
        assert_eq!(cluster.cli(&["SET", &format!("stockflow:{TAG}:{i}"), &i.to_string()]), "OK");
    }
    cluster.migrate_slot(slot, to);
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_eq!(cluster.cli_at(to, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]), "6");
    assert_eq!(cluster.cli_at(to, &["GET", &format!("stockflow:{TAG}:3")]), "3");
    assert!(cluster.cli_at(from, &["GET", &key]).starts_with(&format!("MOVED {slot} 127.0.0.1:{to}")));

    // A write acknowledged by the replica survives its master's death.
    let owner = cluster.master_of_slot(slot);
    assert_eq!(session(owner, &format!("SET {key} durable\nWAIT 1 1000\n")), "OK\n1");
    let killed = cluster.kill_master_of_slot(slot);
    assert_eq!(killed, owner);
    let took = cluster.wait_for_failover(slot, Duration::from_secs(20));
    eprintln!("failover of slot {slot} took {took:?}");
    let new_master = cluster.master_of_slot(slot);
    assert_ne!(new_master, killed);
    assert_eq!(cluster.cli_at(new_master, &["GET", &key]), "durable");
    assert!(!cluster.log_contains("Failover election won").is_empty());

    let started = Instant::now();
    cluster.restart_node(killed);
    eprintln!("restarted node rejoined in {:?}", started.elapsed());
    let nodes = cluster.nodes();
    let rejoined = nodes.iter().find(|n| n.port == killed).expect("the restarted node");
    let new_master_id = &nodes.iter().find(|n| n.port == new_master).expect("the new master").id;
    assert_eq!(rejoined.role, Role::Replica, "{nodes:#?}");
    assert_eq!(rejoined.master_id.as_ref(), Some(new_master_id));
    assert_eq!(cluster.cli_at(killed, &["READONLY"]), "OK");
    assert_eq!(cluster.cli(&["GET", &key]), "durable");

    let stats = cluster.error_stats();
    assert_eq!(stats.matches("# 127.0.0.1:").count(), 6, "{stats}");
    assert!(!stats.contains("errorstat_CROSSSLOT"), "{stats}");

    let ports = cluster.ports();
    drop(cluster);
    for port in ports {
        let out = Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]).output().expect("run redis-cli");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("PONG"), "node {port} outlived its cluster");
    }
}

#[test]
fn clients_keep_working_while_a_slot_migrates_slowly() {
    let cluster = RedisCluster::start();
    let tag = "{mig}";
    let slot = key_slot(tag);
    let keys: Vec<String> = (0..30).map(|i| format!("stockflow:{tag}:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(cluster.cli(&["SET", key, &i.to_string()]), "OK");
    }
    let from = cluster.master_of_slot(slot);
    let to = cluster.nodes().iter().find(|n| n.role == Role::Master && n.port != from).expect("another master").port;

    let done = AtomicBool::new(false);
    let saw_migrating = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            cluster.migrate_slot_slowly(slot, to, Duration::from_millis(100));
            done.store(true, Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) {
            for (i, key) in keys.iter().enumerate().step_by(7) {
                assert_eq!(cluster.cli(&["GET", key]), i.to_string(), "{key} during the migration");
                reads += 1;
            }
            if cluster.cli_at(from, &["CLUSTER", "NODES"]).contains(&format!("[{slot}->-")) {
                saw_migrating.store(true, Ordering::SeqCst);
            }
        }
        eprintln!("{reads} reads during the migration");
    });
    assert!(saw_migrating.load(Ordering::SeqCst), "the slot was never seen MIGRATING");
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_eq!(cluster.cli_at(to, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]), "30");
    assert_eq!(cluster.cli_at(from, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]), "0");
    assert_eq!(cluster.cli(&["GET", &keys[29]]), "29");
}

/// Runs `commands` (one a line) in one redis-cli connection, as WAIT needs.
fn session(port: u16, commands: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    child.stdin.take().expect("its stdin").write_all(commands.as_bytes()).expect("write to redis-cli");
    let out = child.wait_with_output().expect("wait for redis-cli");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}
