//! Who may follow the live feed: at most `FEED_MAX_CLIENTS` connections in
//! all and `FEED_MAX_PER_CLIENT` from one client address. Each connection
//! holds an [`Admission`] for as long as it lasts; the count goes down when
//! the browser goes away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use store::limits::ClientAddr;

/// Why a browser may not follow the feed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address holds `FEED_MAX_PER_CLIENT` connections already.
    PerClient,
    /// `FEED_MAX_CLIENTS` connections are open.
    Full,
}

/// The count of live-feed connections, in all and per client.
#[derive(Debug)]
pub struct FeedClients {
    max_clients: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admission {
    clients: Arc<FeedClients>,
    key: IpAddr,
}

impl FeedClients {
    pub fn new(max_clients: usize, max_per_client: usize) -> Arc<FeedClients> {
        Arc::new(FeedClients { max_clients, max_per_client, open: Mutex::new(Open::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection of `client`, or says why not.
    pub fn admit(self: &Arc<Self>, client: ClientAddr) -> Result<Admission, Refused> {
        let key = client.counted_as();
        let mut open = self.lock();
        if open.total >= self.max_clients {
            return Err(Refused::Full);
        }
        let of_client = open.per_client.entry(key).or_default();
        if *of_client >= self.max_per_client {
            return Err(Refused::PerClient);
        }
        *of_client += 1;
        open.total += 1;
        metrics::gauge!("stockflow_feed_clients").set(open.total as f64);
        Ok(Admission { clients: self.clone(), key })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_client.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.per_client.remove(&self.key);
            }
        }
        metrics::gauge!("stockflow_feed_clients").set(open.total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_client_and_in_all_and_freed_when_dropped() {
        let clients = FeedClients::new(3, 2);
        let [a, b, c] = [1, 2, 3].map(|n| ClientAddr(std::net::Ipv4Addr::new(192, 0, 2, n).into()));
        let first = clients.admit(a).unwrap();
        let _second = clients.admit(a).unwrap();
        assert_eq!(clients.admit(a).unwrap_err(), Refused::PerClient);
        let _third = clients.admit(b).unwrap();
        assert_eq!(clients.admit(c).unwrap_err(), Refused::Full);
        drop(first);
        assert_eq!(clients.open(), 2);
        assert!(clients.admit(c).is_ok(), "a place freed");
        assert!(clients.lock().per_client.len() <= 3);
    }
}
