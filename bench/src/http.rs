//! A lean HTTP/1.1 client for the API: one hyper connection per lane, kept
//! alive and reused, no pool machinery, no per-request URL parsing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::net::TcpStream;
use ulid::Ulid;

/// The app under test: a loopback address, never anything else.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    host: HeaderValue,
    admin: Option<HeaderValue>,
}

impl Target {
    /// Resolves `http://host:port` and refuses anything that is not on the loopback.
    pub async fn resolve(url: &str, admin_token: Option<&str>) -> Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--url {url:?}: only http:// on the loopback is measured");
        }
        let authority = uri.authority().with_context(|| format!("--url {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host().trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("resolving {url}"))?
            .find(|addr| addr.ip().is_loopback())
            .with_context(|| format!("--url {url}: the bench only targets the loopback (127.0.0.1, ::1)"))?;
        Ok(Target {
            url: url.trim_end_matches('/').to_string(),
            addr,
            host: HeaderValue::from_str(authority.as_str())?,
            admin: admin_token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose()?,
        })
    }

    pub fn host(&self) -> &str {
        self.host.to_str().unwrap_or_default()
    }
}

/// One kept-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
}

/// A whole answer.
pub struct Reply {
    pub status: StatusCode,
    #[allow(dead_code)]
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).with_context(|| format!("answer {}: {}", self.status, self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned()
    }
}

/// What `POST /orders` answered.
pub enum Placed {
    Accepted(Ulid),
    Refused(String),
}

#[derive(Deserialize)]
struct Created<'a> {
    id: &'a str,
}

/// A product as the API shows it (the fields the bench needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: domain::Id,
    pub quantity: u32,
}

/// An order as the API shows it (the fields the bench needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: domain::Id,
    pub status: domain::OrderStatus,
    pub quantity: u32,
    #[serde(default)]
    pub refund_reason: Option<String>,
}

impl Conn {
    pub async fn open(target: &Arc<Target>) -> Result<Conn> {
        Conn::open_from(target, None).await
    }

    /// A connection from a loopback address of its own (`127.0.0.2`, ...),
    /// so that the server counts it as a client of its own.
    pub async fn open_from(target: &Arc<Target>, local: Option<std::net::IpAddr>) -> Result<Conn> {
        let stream = match local {
            None => TcpStream::connect(target.addr).await,
            Some(local) => {
                let socket =
                    if local.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                socket.bind(SocketAddr::new(local, 0))?;
                socket.connect(target.addr).await
            }
        }
        .with_context(|| format!("connecting to {}", target.url))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, target: target.clone() })
    }

    pub async fn request(&mut self, method: Method, path: &str, body: Option<String>) -> Result<Reply> {
        let json = body.is_some().then_some("application/json");
        self.request_as(method, path, body, json).await
    }

    /// A form POST, as a page calls a server function.
    pub async fn post_form(&mut self, path: &str, form: &str) -> Result<Reply> {
        self.request_as(Method::POST, path, Some(form.to_string()), Some("application/x-www-form-urlencoded")).await
    }

    async fn request_as(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        content_type: Option<&'static str>,
    ) -> Result<Reply> {
        self.sender.ready().await.context("the connection closed")?;
        let mut request = Request::builder().method(method).uri(path).header(HOST, self.target.host.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(admin) = &self.target.admin {
            request = request.header(AUTHORIZATION, admin.clone());
        }
        let request = request.body(Full::new(body.map(Bytes::from).unwrap_or_default()))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status, headers: parts.headers, body })
    }

    pub async fn get_json<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        let reply = self.request(Method::GET, path, None).await?;
        if reply.status != StatusCode::OK {
            bail!("GET {path}: {} {}", reply.status, reply.text());
        }
        reply.json()
    }

    /// `POST /orders`; a refusal (any status but 201) is an answer, not an error.
    pub async fn place_order(&mut self, product_id: &str, quantity: u32) -> Result<Placed> {
        let body = format!(r#"{{"product_id":"{product_id}","quantity":{quantity}}}"#);
        let reply = self.request(Method::POST, "/orders", Some(body)).await?;
        if reply.status != StatusCode::CREATED {
            return Ok(Placed::Refused(format!("POST /orders: {} {}", reply.status, reply.text())));
        }
        let created: Created = serde_json::from_slice(&reply.body).context("POST /orders answer")?;
        Ok(Placed::Accepted(Ulid::from_string(created.id).map_err(|e| anyhow!("order id {:?}: {e}", created.id))?))
    }

    pub async fn create_product(&mut self, name: &str, price: &str, quantity: u32) -> Result<Product> {
        let body = format!(r#"{{"name":"{name}","price":{price},"quantity":{quantity}}}"#);
        let reply = self.request(Method::POST, "/product", Some(body)).await?;
        if reply.status != StatusCode::CREATED {
            bail!("POST /product: {} {}", reply.status, reply.text());
        }
        reply.json()
    }
}

/// Idle connections for an open loop: take one, or open another.
#[derive(Clone)]
pub struct Pool {
    target: Arc<Target>,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl Pool {
    pub fn new(target: &Arc<Target>) -> Pool {
        Pool { target: target.clone(), idle: Arc::default() }
    }

    pub async fn warm(&self, connections: usize) -> Result<()> {
        for _ in 0..connections {
            let conn = Conn::open(&self.target).await?;
            self.put(conn);
        }
        Ok(())
    }

    pub async fn take(&self) -> Result<Conn> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => Conn::open(&self.target).await,
        }
    }

    /// Gives a connection back, unless it closed.
    pub fn put(&self, conn: Conn) {
        if !conn.sender.is_closed() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
    }
}
