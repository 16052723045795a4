//! The collector process: the store, the metrics and the HTTP API, bound and served until
//! shutdown is requested.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vakt_config::CollectorConfig;

use crate::app::{App, ServerError};

/// A collector bound to its port, not yet serving.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    certs: Option<Arc<crate::http::tls::Certificates>>,
    /// Notification receivers with their secrets read (for the outbox worker).
    receivers: Receivers,
    /// Remote-write targets with their secrets read.
    remote_write: Vec<crate::remote_write::Target>,
}

type Receivers = std::collections::HashMap<String, crate::notify::receivers::Receiver>;

impl Server {
    pub async fn bind(config: CollectorConfig) -> Result<Self, ServerError> {
        crate::http::front::raise_open_file_limit();
        let addr = config.listen_addr();
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        Self::on(config, listener).await
    }

    /// The collector on a socket already listening: a reload keeps the socket it had.
    pub async fn on(config: CollectorConfig, listener: std::net::TcpListener) -> Result<Self, ServerError> {
        let receivers = crate::notify::receivers::receivers(&config).map_err(ServerError::Config)?;
        let remote_write = crate::remote_write::targets(&config).map_err(ServerError::Config)?;
        let app = tokio::task::spawn_blocking(move || App::open(config))
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
        let certs = match &app.config.tls {
            Some(files) => {
                Some(Arc::new(crate::http::tls::Certificates::load(files.clone()).map_err(ServerError::Config)?))
            }
            None => None,
        };
        listener.set_nonblocking(true).map_err(ServerError::Serve)?;
        let listener = TcpListener::from_std(listener).map_err(ServerError::Serve)?;
        Ok(Server { app: Arc::new(app), listener, certs, receivers, remote_write })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.app.config.listen_addr())
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        self.serve_reloading(None, shutdown).await
    }

    /// [`Server::serve`], and with `reload_from`, SIGHUP re-reads that configuration file.
    ///
    /// A configuration that does not load (or whose secrets or TLS certificate cannot be read)
    /// is refused with the reason, and the running one goes on. An accepted one takes over in
    /// place: the socket and its connections stay (the HTTP front hands each request to the
    /// router of the configuration in force), requests in flight finish with the old one, the
    /// evaluator and the notification worker restart on the new one, and the metrics are primed
    /// from the store as at a start (counters start again from zero). `listen`, `data_dir`
    /// and switching TLS on or off need a restart.
    pub async fn serve_reloading(
        self,
        reload_from: Option<&std::path::Path>,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        use tower::ServiceExt;
        let addr = self.local_addr();
        let mut app = self.app;
        let mut receivers = self.receivers;
        let mut remote_write = self.remote_write;
        tracing::info!(%addr, db = %app.config.data_dir.display(), "collector serving");
        let current = Arc::new(std::sync::RwLock::new(crate::http::api::router(app.clone())));
        let front = axum::Router::new().fallback({
            let current = current.clone();
            move |request: axum::extract::Request| {
                let router = current.read().unwrap_or_else(|p| p.into_inner()).clone();
                async move { router.oneshot(request).await.unwrap_or_else(|never| match never {}) }
            }
        });
        if self.certs.is_some() {
            let mutual = app.config.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
            tracing::info!(%addr, mutual, "serving HTTPS");
        }
        let limits = crate::http::front::Limits {
            max_connections: app.config.max_connections,
            header_timeout: app.config.request_header_timeout.get(),
        };
        let http =
            tokio::spawn(crate::http::front::serve(self.listener, front, self.certs.clone(), limits, shutdown.clone()));
        let mut hangup = match reload_from {
            Some(_) => Some(
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(ServerError::Serve)?,
            ),
            None => None,
        };
        loop {
            let tasks_stop = shutdown.child_token();
            let election = tokio::spawn(crate::cluster::run(app.clone(), tasks_stop.clone()));
            let exporter =
                tokio::spawn(crate::remote_write::run(app.clone(), remote_write.clone(), tasks_stop.clone()));
            let outbox = tokio::spawn(crate::notify::worker::run(app.clone(), receivers.clone(), tasks_stop.clone()));
            let evaluator = tokio::spawn(crate::evaluate::run(
                app.clone(),
                Arc::new(crate::core::time::SystemClock),
                tasks_stop.clone(),
            ));
            let next = tokio::select! {
                _ = shutdown.cancelled() => None,
                new = next_config(&mut hangup, reload_from, &app.config) => Some(new),
            };
            tasks_stop.cancel();
            let _ = evaluator.await;
            let _ = outbox.await;
            let _ = election.await;
            let _ = exporter.await;
            let Some(Reloadable { config, certs: fresh_certs }) = next else { break };
            let fresh = crate::notify::receivers::receivers(&config)
                .and_then(|r| crate::remote_write::targets(&config).map(|w| (r, w)));
            let (fresh_receivers, fresh_remote_write) = match fresh {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {e}");
                    continue;
                }
            };
            let opened = tokio::task::spawn_blocking(move || App::open(config)).await;
            let new_app = match opened.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {e}");
                    continue;
                }
            };
            if let (Some(certs), Some(fresh)) = (&self.certs, fresh_certs) {
                certs.adopt(fresh);
            }
            app = Arc::new(new_app);
            receivers = fresh_receivers;
            remote_write = fresh_remote_write;
            *current.write().unwrap_or_else(|p| p.into_inner()) = crate::http::api::router(app.clone());
            let checks = app.config.checks.len();
            if app.config.tls.is_some() {
                tracing::info!(checks, "SIGHUP: configuration and TLS certificate reloaded");
            } else {
                tracing::info!(checks, "SIGHUP: configuration reloaded");
            }
        }
        http.await.map_err(|e| ServerError::Serve(std::io::Error::other(e)))?;
        tracing::info!("collector stopped");
        Ok(())
    }
}

/// A configuration checked to replace the running one, with its TLS certificate read.
struct Reloadable {
    config: CollectorConfig,
    certs: Option<crate::http::tls::Certificates>,
}

/// Waits for SIGHUP and returns the configuration at `path` once one can replace `running`;
/// refusals are logged with their reasons. Never returns without a reload source.
async fn next_config(
    hangup: &mut Option<tokio::signal::unix::Signal>,
    path: Option<&std::path::Path>,
    running: &Arc<CollectorConfig>,
) -> Reloadable {
    let (Some(hangup), Some(path)) = (hangup.as_mut(), path) else {
        return std::future::pending().await;
    };
    loop {
        hangup.recv().await;
        let (path, running) = (path.to_path_buf(), running.clone());
        match tokio::task::spawn_blocking(move || reloadable(&path, &running)).await {
            Ok(Ok(new)) => return new,
            Ok(Err(why)) => tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {why}"),
            Err(e) => tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {e}"),
        }
    }
}

/// The configuration at `path` if the running collector can switch to it without a restart.
fn reloadable(path: &std::path::Path, running: &CollectorConfig) -> Result<Reloadable, String> {
    let new = match CollectorConfig::load(path) {
        Ok(c) => c,
        Err(vakt_config::LoadError::Invalid(errors)) => return Err(format!("invalid configuration:\n{errors}")),
        Err(e) => return Err(e.to_string()),
    };
    if new.listen_addr() != running.listen_addr() {
        return Err(format!(
            "listen changed from {} to {}; restart the collector to move it",
            running.listen_addr(),
            new.listen_addr()
        ));
    }
    if new.tls.is_some() != running.tls.is_some() {
        return Err("TLS switched on or off; restart the collector for that".into());
    }
    if new.data_dir != running.data_dir {
        return Err(format!(
            "data_dir changed from {} to {}; restart the collector to move it",
            running.data_dir.display(),
            new.data_dir.display()
        ));
    }
    let store_of = |c: &CollectorConfig| {
        let s = c.store.get_ref();
        let url = s.url.as_ref().map(|u| (u.value.clone(), u.env.clone(), u.file.clone()));
        (s.kind, url, s.pool_size)
    };
    if store_of(&new) != store_of(running) {
        return Err("[store] changed; restart the collector to move to another database".into());
    }
    crate::notify::receivers::receivers(&new)?;
    crate::remote_write::targets(&new)?;
    let certs = match &new.tls {
        Some(files) => Some(
            crate::http::tls::Certificates::load(files.clone())
                .map_err(|e| format!("TLS certificate not reloaded; the old one stays in use: {e}"))?,
        ),
        None => None,
    };
    Ok(Reloadable { config: new, certs })
}
