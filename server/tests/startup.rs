//! Settings that cannot work stop the server at start with a message that
//! says what to do and a non-zero exit code, never a panic: a bad or changed
//! `PARTITIONS`, a bad namespace, and a cluster nobody answers at.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{free_port, Backend, TestRedis};

const SERVER_BIN: &str = env!("CARGO_BIN_EXE_server");

/// Runs the server with `env` until it exits (at most 20 s); returns its exit code and stderr.
fn run_server(env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = Command::new(SERVER_BIN);
    command
        .env("LEPTOS_OUTPUT_NAME", "stockflow")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    (status.code(), stderr)
}

#[test]
fn bad_partition_settings_and_an_unreachable_cluster_stop_the_server_with_a_message() {
    let redis = TestRedis::start(Backend::Single);
    let target = redis.env();
    let with = |extra: &[(&str, &str)]| {
        let mut env = vec![(target.0, target.1.clone()), ("STARTUP_WAIT_MS", "500".to_string())];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        run_server(&env)
    };

    for bad in ["0", "abc", "2000"] {
        let (code, message) = with(&[("PARTITIONS", bad)]);
        assert_eq!(code, Some(2), "PARTITIONS={bad}: {message}");
        assert!(message.contains("<PARTITIONS>"), "PARTITIONS={bad}: {message}");
    }
    for (variable, bad) in [
        ("ADMIN_GUESS_BURST", "0"),
        ("READ_BLOCK_MS", "abc"),
        ("ADMIN_SESSION_IDLE_SECS", "5"),
        ("REDIS_MIN_REPLICAS", "-1"),
    ] {
        let (code, message) = with(&[(variable, bad)]);
        assert_eq!(code, Some(2), "{variable}={bad}: {message}");
        assert!(message.contains(&format!("<{variable}>")) && message.contains(bad), "{variable}={bad}: {message}");
    }
    let (code, message) = with(&[("REDIS_NAMESPACE", "a b")]);
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("REDIS_NAMESPACE"), "{message}");

    // A deployment made with 16 partitions (as the first process records it) refuses to start with 8.
    let recorded =
        Command::new("redis-cli").args(["-u", &target.1, "SET", "stockflow:partitions", "16"]).output().unwrap();
    assert!(recorded.status.success());
    let (code, message) = with(&[("PARTITIONS", "8")]);
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("PARTITIONS is 8") && message.contains("created with 16"), "{message}");

    let dead = format!("redis://127.0.0.1:{},redis://127.0.0.1:{}", free_port(), free_port());
    let (code, message) = run_server(&[("REDIS_CLUSTER_NODES", dead.clone()), ("STARTUP_WAIT_MS", "500".to_string())]);
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("cannot reach Redis") && message.contains("cluster redis://127.0.0.1:"), "{message}");
    let (code, message) = run_server(&[("REDIS_CLUSTER_NODES", "nonsense".to_string())]);
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("REDIS_CLUSTER_NODES"), "{message}");
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let out = Command::new(SERVER_BIN).arg("--help").env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "[env: REDIS_URL=]",
        "[default: redis://127.0.0.1:6379]",
        "[env: REDIS_CLUSTER_NODES=]",
        "[env: PARTITIONS=]",
        "[env: REDIS_MIN_REPLICAS=]",
        "[env: IDEMPOTENCY_TTL_SECS=]",
        "[env: READ_BLOCK_MS=]",
        "[env: STREAM_MAXLEN=]",
        "[env: ADMIN_TOKEN]",
        "[env: LEPTOS_SITE_ADDR=]",
        "[env: LOG_FORMAT=]",
        "[default: text]",
        "[default: 127.0.0.1:3000]",
    ] {
        assert!(help.contains(expected), "--help lacks {expected:?}:\n{help}");
    }
    // The workers' settings are theirs alone.
    for theirs in ["PAYMENT_DELAY_MS", "MAX_DELIVERIES", "CONSUMER_NAME", "WORKERS_METRICS_ADDR"] {
        assert!(!help.contains(theirs), "--help offers the workers' {theirs}:\n{help}");
    }
}

#[test]
fn a_guessable_admin_token_or_an_open_warehouse_on_a_public_address_stops_the_server() {
    let redis = TestRedis::start(Backend::Single);
    let target = redis.env();
    let with = |extra: &[(&str, &str)]| {
        let mut env = vec![(target.0, target.1.clone())];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        run_server(&env)
    };
    for short in ["", "hunter2", "fifteen-chars15"] {
        let (code, message) = with(&[("ADMIN_TOKEN", short)]);
        assert_eq!(code, Some(2), "ADMIN_TOKEN={short:?}: {message}");
        assert!(message.contains("ADMIN_TOKEN has") && message.contains("at least 16"), "{message}");
        assert!(short.is_empty() || !message.contains(short), "the token is never printed: {message}");
    }
    let public = format!("0.0.0.0:{}", free_port());
    let (code, message) = with(&[("LEPTOS_SITE_ADDR", &public)]);
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("ADMIN_TOKEN is unset") && message.contains("ALLOW_OPEN_WAREHOUSE=true"), "{message}");
}
