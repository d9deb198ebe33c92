//! One assembly of the running service, for `main` and for the tests: [`Service::builder`]
//! takes the configuration, and a test may replace a part (the store, the verifier); the
//! rest is built exactly as production builds it. [`Service::run`] then serves an
//! already-bound listener until a shutdown future completes, and takes everything down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app;
use crate::auth::{AuthSettings, Verifier};
use crate::config::{MetricsAddr, ServeConfig};
use crate::http::{AppState, CursorKey, ShutdownFlag};
use crate::live::announcing::Announcing;
use crate::live::hub::Hub;
use crate::live::{announce, listen};
use crate::maintenance;
use crate::rate_limits::Limiter;
use crate::rate_limits::redis::RedisLimits;
use crate::server::{self, ServeOptions};
use crate::store::TaskStore;
use crate::store::postgres::notify::Listening;
use crate::telemetry::metrics::{self, Scrape};

/// Why the service could not be assembled or served.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// The service, assembled and ready to serve.
pub struct Service {
    /// Everything the API serves, with its policies: what a test sends requests to.
    pub router: Router,
    /// The live streams: a test can count them or close them.
    pub events: Arc<Hub>,
    /// Raised on shutdown, so that `/ready` fails.
    pub shutdown: ShutdownFlag,
    store: Arc<dyn TaskStore>,
    /// `/metrics` on a listener of its own, when configured so.
    metrics: Option<(TcpListener, Router)>,
    /// Tasks that live as long as the service: the purge, the announcer, the listener.
    background: Background,
    options: ServeOptions,
    grace: Duration,
}

/// Tasks that live as long as what holds them: aborted when it is dropped, so that a service
/// that failed to assemble, or that a test built and let go, leaves none running.
#[derive(Default)]
struct Background(Vec<JoinHandle<()>>);

impl Background {
    fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// How a [`Service`] is assembled: from the configuration, with the parts a test replaces.
pub struct ServiceBuilder<'a> {
    config: &'a ServeConfig,
    store: Arc<dyn TaskStore>,
    auth: Option<AuthSettings>,
    verifier: Option<Arc<Verifier>>,
}

impl Service {
    /// Assembles the service `config` describes on `store`, which is open and migrated.
    pub fn builder(config: &ServeConfig, store: Arc<dyn TaskStore>) -> ServiceBuilder<'_> {
        ServiceBuilder {
            config,
            store,
            auth: None,
            verifier: None,
        }
    }

    /// Serves on `listener` until `shutdown` completes: `/ready` then fails for the grace
    /// period while requests are still served, the listener closes, streams end, in-flight
    /// requests drain, and the background tasks and the pool are taken down.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = server::shutdown_after_grace(shutdown, self.shutdown.clone(), self.grace);
        // Event streams end when the listener closes, not when /ready starts failing: until
        // then the load balancer may still send their reconnects here.
        let events = self.events.clone();
        let stop = async move {
            grace.await;
            events.close();
        };
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            })
        });
        let served = server::serve_with(listener, self.router, stop, self.options).await;
        drop(self.background);
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // Bounded: a connection that is never given back must not keep the process from
        // exiting.
        if tokio::time::timeout(Duration::from_secs(5), self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use after 5 s; exiting anyway");
        }
        served
    }
}

impl ServiceBuilder<'_> {
    /// The authentication settings, already read from the configuration (reading them again
    /// would log their warnings twice).
    pub fn auth(mut self, settings: AuthSettings) -> Self {
        self.auth = Some(settings);
        self
    }

    /// Verifies tokens with `verifier` instead of what the configuration names.
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    /// Builds every part: the verifier (which may create the development secret), the live
    /// streams and the announcing of writes, the rate limiter, the cursor key, the metrics
    /// and their listener, and the purge.
    pub async fn build(self) -> Result<Service, StartupError> {
        let config = self.config;
        let store = self.store;
        let verifier = match (self.verifier, self.auth) {
            (Some(verifier), _) => verifier,
            (None, Some(settings)) => Arc::new(Verifier::from_settings(&settings)?),
            (None, None) => Arc::new(Verifier::from_settings(&config.auth.settings()?)?),
        };
        let options = config.http.serve_options();
        let event_settings = config.events.settings(options.max_connections);
        tracing::info!(
            max_connections = options.max_connections,
            max_streams = event_settings.max_streams,
            max_streams_per_user = event_settings.max_per_user,
            "connection and event stream caps (streams take at most half of the connections)"
        );
        let mut background = Background::default();
        let listening = config
            .events
            .database_listen_url
            .as_ref()
            .and_then(|url| url.postgres_options());
        let events = match listening {
            Some(_) => {
                let (queue, announcer) = announce::announcements(store.clone());
                background.push(announcer);
                Hub::announcing(store.clone(), event_settings, queue)
            }
            None => Hub::new(store.clone(), event_settings),
        };
        if let Some(options) = listening {
            let listening = Listening::new(options.clone());
            background.push(tokio::spawn(listen::listen(
                listening,
                Arc::downgrade(&events),
            )));
        }
        let limiter = match config.rate_limits.redis()? {
            Some(client) => Limiter::shared(
                config.rate_limits.settings(),
                RedisLimits::connect(client, config.rate_limits.redis_timeout()),
            ),
            None => Limiter::local(config.rate_limits.settings()),
        };
        let cursor_key = store
            .shared_key(CursorKey::NAME)
            .await
            .map_err(|error| format!("cannot read the cursor key: {error}"))?;
        let state = AppState {
            tasks: Announcing::wrap(store.clone(), events.clone()),
            lists: Announcing::wrap_lists(store.clone(), events.clone()),
            feed: store.clone(),
            calendars: store.clone(),
            pool: store.clone(),
            verifier,
            cursor_key: CursorKey(Arc::new(cursor_key)),
            events: events.clone(),
            limiter: Arc::new(limiter),
            shutdown: ShutdownFlag::default(),
        };
        let shutdown = state.shutdown.clone();
        let mut router = app::router(state, &config.http.settings());
        let mut metrics = None;
        if config.http.metrics {
            let scrape = Scrape {
                handle: metrics::install()?,
                pool: store.clone(),
                events: events.clone(),
            };
            match config.http.metrics_addr {
                MetricsAddr::Main => router = router.merge(metrics::router(scrape)),
                MetricsAddr::Own(address) => {
                    let listener = server::bind(address).map_err(|error| {
                        format!("cannot listen on METRICS_ADDR {address}: {error}")
                    })?;
                    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
                    metrics = Some((listener, metrics::router(scrape)));
                }
            }
        }
        background.push(maintenance::spawn(
            store.clone(),
            config.retention.trash_retention(),
        ));
        Ok(Service {
            router,
            events,
            shutdown,
            store,
            metrics,
            background,
            options,
            grace: config.http.shutdown_grace(),
        })
    }
}
