//! Which Redis an integration test runs against: one private `redis-server`,
//! or a private Redis Cluster. The same test body runs on both
//! ([`on_every_backend!`]), so every guarantee is proven in both modes.

use crate::{RedisCluster, RedisServer};

/// One server, or a cluster of 3 masters with a replica each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Single,
    Cluster,
}

/// A private Redis of either kind, stopped when dropped. A cluster also
/// checks, when dropped at the end of a passing test, that no command of the
/// test failed with CROSSSLOT (a key layout that spans hash slots).
pub enum TestRedis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl TestRedis {
    pub fn start(backend: Backend) -> TestRedis {
        match backend {
            Backend::Single => TestRedis::Single(RedisServer::start()),
            Backend::Cluster => TestRedis::Cluster(RedisCluster::start()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestRedis::Single(_) => Backend::Single,
            TestRedis::Cluster(_) => Backend::Cluster,
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.backend() == Backend::Cluster
    }

    /// The environment variable that points a Stockflow process at it, and its value:
    /// `REDIS_URL` for one server, `REDIS_CLUSTER_NODES` for a cluster.
    pub fn env(&self) -> (&'static str, String) {
        match self {
            TestRedis::Single(server) => ("REDIS_URL", server.url()),
            TestRedis::Cluster(cluster) => ("REDIS_CLUSTER_NODES", cluster.seeds()),
        }
    }

    /// The one server; panics on a cluster (for tests that restart Redis).
    pub fn single(&mut self) -> &mut RedisServer {
        match self {
            TestRedis::Single(server) => server,
            TestRedis::Cluster(_) => panic!("this test needs a single redis-server"),
        }
    }

    /// The cluster; panics on a single server.
    pub fn cluster(&mut self) -> &mut RedisCluster {
        match self {
            TestRedis::Cluster(cluster) => cluster,
            TestRedis::Single(_) => panic!("this test needs a cluster"),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let TestRedis::Cluster(cluster) = self {
            if !std::thread::panicking() {
                let stats = cluster.error_stats();
                assert!(!stats.contains("CROSSSLOT"), "a command failed with CROSSSLOT:\n{stats}");
            }
        }
    }
}

/// Runs each named `async fn test(backend: Backend)` once on a single
/// server (`single::test`) and once on a cluster (`cluster::test`).
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Single).await
                }
            )+
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Cluster).await
                }
            )+
        }
    };
}
