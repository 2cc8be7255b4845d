//! The shop behind a real reverse proxy that terminates TLS: nginx from
//! Debian, started by the test on loopback with a self-signed certificate,
//! configured as the README shows. The page, the REST API and the live feed
//! work through it (events unbuffered), the admin cookie is `Secure`, and
//! two clients behind it count as two (`TRUSTED_PROXIES`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{start_serving, Running};
use reqwest::header::{ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use store::admin::Secret;
use store::limits::Rate;
use testkit::{free_port, Backend, Process};
use tokio::time::Instant;

const TOKEN: &str = "s3cret-admin-token-behind-a-proxy";

/// The proxy's configuration, as the README gives it (`listen`, certificate,
/// `proxy_pass` and the scratch paths filled in); one process, so that killing
/// it leaves no worker behind.
fn nginx_conf(dir: &Path, listen: u16, app: &str) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{listen} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{
            proxy_pass http://{app};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
    )
}

/// nginx in front of `app`, on `listen`, killed when dropped (with its scratch directory).
struct Proxy {
    _nginx: Process,
    _dir: tempfile::TempDir,
    /// The certificate authority clients trust.
    cert: Vec<u8>,
}

impl Proxy {
    async fn start(listen: u16, app: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        // A certificate authority of the test's own, and the proxy's certificate signed by it.
        let openssl = |args: &[&str]| {
            let made = Command::new("openssl").args(args).current_dir(dir.path()).output();
            let made = made.expect("openssl (scripts/setup installs it)");
            assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
        };
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509", "-days", "1", "-subj", "/CN=Stockflow test CA"][..],
                &key,
                &["-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
        );
        openssl(&[&["req", "-subj", "/CN=localhost"][..], &key, &["-keyout", "key.pem", "-out", "leaf.csr"]].concat());
        std::fs::write(dir.path().join("leaf.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), listen, app)).unwrap();
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists());
        let nginx = nginx.expect("nginx (scripts/setup installs it)");
        let prefix = format!("{}/", dir.path().display());
        let error_log = dir.path().join("startup.log").display().to_string();
        let args = ["-c", conf.to_str().unwrap(), "-p", &prefix, "-e", &error_log];
        let process = Process::spawn("nginx", nginx, &args, &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", listen)).await.is_err() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "nginx did not start: {log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cert = std::fs::read(dir.path().join("ca.pem")).unwrap();
        Proxy { _nginx: process, _dir: dir, cert }
    }

    /// A client of the proxy, from `local` (a loopback address of its own).
    fn client(&self, listen: u16, local: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert).unwrap())
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], listen)))
            .local_address(local.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    }
}

async fn app_behind_a_proxy(listen: u16) -> Running {
    start_serving(
        Backend::Single,
        |config| config.admin_token = Some(Secret::new(TOKEN)),
        |server| {
            server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            server.public_origins =
                vec![server::config::Origin::parse(&format!("https://localhost:{listen}")).unwrap()];
            server.order_rate = Some(Rate { burst: 2, interval: Duration::from_secs(60) });
        },
        |_| {},
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_works_behind_nginx_terminating_tls() {
    let listen = free_port();
    let app = app_behind_a_proxy(listen).await;
    let proxy = Proxy::start(listen, app.base.trim_start_matches("http://")).await;
    let public = format!("https://localhost:{listen}");
    let (alice, bob) = (proxy.client(listen, "127.0.0.2"), proxy.client(listen, "127.0.0.3"));

    // The page, with its security headers, HSTS among them: the proxy said HTTPS.
    let page = alice.get(format!("{public}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.text().await.unwrap().contains("Stockflow"));

    // The REST API, with the admin token.
    let created = alice
        .post(format!("{public}/product"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Proxied chair", "price": 5, "quantity": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let product: Value = created.json().await.unwrap();
    let product_id = product["id"].as_str().unwrap().to_string();

    // The sign-in, from the shop's own page: a Secure, __Host- cookie.
    let signed = alice
        .post(format!("{public}/api/sign_in"))
        .header(ORIGIN, &public)
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    let cookie = signed.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-stockflow_admin=") && cookie.contains("; Secure"), "{cookie}");
    let forged = alice.post(format!("{public}/api/sign_in")).header(ORIGIN, "https://evil.example");
    assert_eq!(forged.form(&[("token", TOKEN)]).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // The live feed, through the proxy, as it happens.
    let mut feed = bob.get(format!("{public}/api/events")).send().await.unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    read_until(&mut feed, "event: subscribed").await;
    let mut delays = Vec::new();
    for n in 0..5 {
        // Each from a client of its own, through the proxy (each may place two orders in a row).
        let shopper = proxy.client(listen, &format!("127.0.0.{}", 10 + n));
        let order = json!({"product_id": product_id, "quantity": 1});
        let placed: Value =
            shopper.post(format!("{public}/orders")).json(&order).send().await.unwrap().json().await.unwrap();
        let answered = Instant::now();
        let order_id = placed["id"].as_str().unwrap().to_string();
        read_until(&mut feed, &order_id).await;
        delays.push(answered.elapsed());
    }
    delays.sort();
    println!("order placed → its event through nginx: {delays:?}");
    assert!(delays[2] < Duration::from_millis(100), "events are buffered: {delays:?}");

    // Two clients behind the proxy are two clients: Alice's limit is not Bob's.
    let order = json!({"product_id": product_id, "quantity": 1});
    for _ in 0..2 {
        assert_eq!(
            alice.post(format!("{public}/orders")).json(&order).send().await.unwrap().status(),
            StatusCode::CREATED
        );
    }
    let refused = alice.post(format!("{public}/orders")).json(&order).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(bob.post(format!("{public}/orders")).json(&order).send().await.unwrap().status(), StatusCode::CREATED);
}

/// Reads the stream until `wanted` appears (up to 10 s).
async fn read_until(response: &mut reqwest::Response, wanted: &str) {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(wanted) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the feed ended or stalled before {wanted:?} ({other:?}): {seen}"),
        }
    }
}
