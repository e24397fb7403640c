//! Running services: every role in one process (`up`), or a chosen set (`serve`).

use anyhow::Context;
use lienthong_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Gateway,
    Verifier,
    Translator,
    Router,
    Delivery,
    Ledger,
    /// The links to other buses (`[federation]`).
    Forwarder,
    /// The web console (`[console]`).
    Console,
}

/// Every role the configuration calls for: the verifier and the translator only when they have
/// their sections.
pub fn all_roles(config: &Config) -> Vec<Role> {
    let mut roles = vec![Role::Gateway];
    if config.verifier.is_some() {
        roles.push(Role::Verifier);
    }
    if config.translator.is_some() {
        roles.push(Role::Translator);
    }
    roles.extend([Role::Router, Role::Delivery, Role::Ledger]);
    if config.federation.is_some() {
        roles.push(Role::Forwarder);
    }
    if config.console.is_some() {
        roles.push(Role::Console);
    }
    roles
}

/// What `roles` need of the configuration, checked before anything starts (and by
/// `lienthong check-config`): each role's section, and the console's tokens.
pub fn check_roles(config: &mut Config, roles: &[Role]) -> anyhow::Result<()> {
    for role in roles {
        let (present, section) = match role {
            Role::Verifier => (config.verifier.is_some(), "[verifier]"),
            Role::Translator => (config.translator.is_some(), "[translator]"),
            Role::Forwarder => (config.federation.is_some(), "[federation]"),
            Role::Console => (config.console.is_some(), "[console]"),
            Role::Gateway | Role::Router | Role::Delivery | Role::Ledger => (true, ""),
        };
        if !present {
            anyhow::bail!(
                "the {} needs a {section} section in the configuration",
                format!("{role:?}").to_lowercase()
            );
        }
    }
    if let Some(tls) = config
        .gateway
        .tls
        .as_ref()
        .filter(|_| roles.contains(&Role::Gateway))
    {
        tls.acceptor("gateway.tls")
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    console_tokens(config, roles)
}

/// The console's tokens: when the gateway runs in this process and none is configured, a token
/// made now, whose digest the gateway accepts; when it runs elsewhere, the configured one is
/// required (the other process could not know a token made here).
fn console_tokens(config: &mut Config, roles: &[Role]) -> anyhow::Result<()> {
    let here = roles.contains(&Role::Gateway);
    let Some(console) = config
        .console
        .as_mut()
        .filter(|_| roles.contains(&Role::Console))
    else {
        return Ok(());
    };
    for (token, digests, name) in [
        (
            &mut console.operator_token,
            &mut config.gateway.operator_tokens_sha256,
            "operator",
        ),
        (
            &mut console.security_token,
            &mut config.gateway.security_tokens_sha256,
            "security",
        ),
    ] {
        if token.is_none() {
            if !here {
                anyhow::bail!(
                    "console.{name}_token: required when the gateway runs in another process (its SHA-256 in that gateway's gateway.{name}_tokens_sha256)"
                );
            }
            let made = crate::admin::new_secret()?;
            digests.push(lienthong_store::sha256_hex(made.as_bytes()));
            *token = Some(made);
        }
    }
    Ok(())
}

/// Connects the store, seeds the registry if it is empty, and runs the roles until SIGINT/SIGTERM.
pub async fn run(
    mut config: Config,
    roles: &[Role],
    on_ready: impl FnOnce(&Store, Option<std::net::SocketAddr>),
) -> anyhow::Result<()> {
    check_roles(&mut config, roles)?;
    let store = Store::connect(&config.store)
        .await
        .context("opening the store")?;
    if let Some(seed) = &config.registry.seed
        && store.agencies().await?.is_empty()
    {
        let n = crate::admin::import_registry(&store, seed).await?;
        tracing::info!(agencies = n, file = %seed.display(), "seeded the agency registry");
    }
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    lienthong_telemetry::install();
    for role in roles {
        metrics::gauge!("lienthong_role_up", "role" => format!("{role:?}").to_lowercase()).set(1.0);
    }
    if let Some(addr) = config.telemetry.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding telemetry.listen {addr}"))?;
        let (store, bus, stop) = (store.clone(), config.bus.clone(), stop.clone());
        let ready: lienthong_telemetry::ReadyCheck = std::sync::Arc::new(move || {
            let (store, publisher) = (
                store.clone(),
                lienthong_bus::Publisher::new(&bus, "lienthong-readyz"),
            );
            Box::pin(async move {
                vec![
                    ("store", store.ping().await.map_err(|e| e.to_string())),
                    (
                        "broker",
                        publisher
                            .ensure_connected()
                            .await
                            .map_err(|e| e.to_string()),
                    ),
                ]
            })
        });
        tasks.spawn(async move {
            if let Err(e) = lienthong_telemetry::serve_ops(listener, ready, stop).await {
                tracing::error!(error = %e, "telemetry endpoint stopped");
            }
            "telemetry"
        });
    }
    let mut gateway_addr = None;
    let federation = config.federation.clone().map(std::sync::Arc::new);
    // The document stages of this process, run back to back on a message.
    let pipeline = lienthong_bus::Pipeline::new(&config.bus);
    for role in roles {
        let stages = pipeline.clone();
        let (store, bus) = (store.clone(), config.bus.clone());
        let stop = stop.clone();
        match role {
            Role::Gateway => {
                let (listener, addr) = lienthong_gateway::bind(&config.gateway)
                    .await
                    .with_context(|| format!("binding the gateway to {}", config.gateway.listen))?;
                gateway_addr = Some(addr);
                if let Some(a) = config.amqp_adapters.as_ref().filter(|a| a.sync_secs > 0) {
                    let management = crate::admin::management(&config)?;
                    let every = std::time::Duration::from_secs(a.sync_secs);
                    let (store, stop) = (store.clone(), stop.clone());
                    tasks.spawn(async move {
                        keep_adapter_accounts_in_line(management, store, every, stop).await;
                        "adapter accounts"
                    });
                }
                let mut gw = config.gateway.clone();
                if config.amqp_adapters.is_some() {
                    gw.adapters = Some(crate::admin::management(&config)?);
                }
                tasks.spawn(async move {
                    if let Err(e) = lienthong_gateway::serve(listener, store, bus, gw, stop).await {
                        tracing::error!(error = %e, "gateway stopped");
                    }
                    "gateway"
                });
            }
            Role::Verifier => {
                let Some(vc) = config.verifier.clone() else {
                    anyhow::bail!("the verifier needs a [verifier] section in the configuration");
                };
                // Fail at start, not at the first message, if the trust anchors are unreadable.
                vc.load_trust()
                    .with_context(|| format!("verifier.trust_dir {}", vc.trust_dir.display()))?;
                tasks.spawn(async move {
                    if let Err(e) = lienthong_verifier::run(store, stages, vc, stop).await {
                        tracing::error!(error = %e, "verifier stopped");
                    }
                    "verifier"
                });
            }
            Role::Translator => {
                let Some(tc) = config.translator.clone() else {
                    anyhow::bail!(
                        "the translator needs a [translator] section in the configuration"
                    );
                };
                tasks.spawn(async move {
                    if let Err(e) = lienthong_translator::run(store, stages, tc, stop).await {
                        tracing::error!(error = %e, "translator stopped");
                    }
                    "translator"
                });
            }
            Role::Router => {
                let f = federation.clone();
                tasks.spawn(async move {
                    lienthong_router::run(store, stages, f, stop).await;
                    "router"
                });
            }
            Role::Forwarder => {
                let Some(f) = federation.clone() else {
                    anyhow::bail!(
                        "the forwarder needs a [federation] section in the configuration"
                    );
                };
                let gw = config.gateway.clone();
                tasks.spawn(async move {
                    if let Err(e) = lienthong_forwarder::run(store, bus, gw, f, stop).await {
                        tracing::error!(error = %e, "forwarder stopped");
                    }
                    "forwarder"
                });
            }
            Role::Console => {
                let Some(cc) = config.console.clone() else {
                    anyhow::bail!("the console needs a [console] section in the configuration");
                };
                let gateway_url = cc.gateway_url.clone().unwrap_or_else(|| {
                    // With gateway.tls, console.gateway_url should name the host in the
                    // gateway's certificate.
                    let scheme = if config.gateway.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    format!(
                        "{scheme}://{}",
                        gateway_addr.unwrap_or(config.gateway.listen)
                    )
                });
                let (listener, addr) = lienthong_console::bind(&cc)
                    .await
                    .with_context(|| format!("binding the console to {}", cc.listen))?;
                tracing::info!(%addr, gateway = %gateway_url, "console listening");
                let scheme = if cc.tls.is_some() { "https" } else { "http" };
                println!("console listening on {scheme}://{addr}");
                tasks.spawn(async move {
                    if let Err(e) = lienthong_console::serve(listener, cc, gateway_url, stop).await
                    {
                        tracing::error!(error = %e, "console stopped");
                    }
                    "console"
                });
            }
            Role::Delivery => {
                tasks.spawn(async move {
                    lienthong_delivery::run(store, stages, stop).await;
                    "delivery"
                });
            }
            Role::Ledger => {
                tasks.spawn(async move {
                    lienthong_ledger::run(store, stages, stop).await;
                    "ledger"
                });
            }
        }
    }
    on_ready(&store, gateway_addr);
    tracing::info!(roles = ?roles, "lienthong running");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
        Some(done) = tasks.join_next() => {
            tracing::error!(role = ?done.ok(), "a service stopped unexpectedly; shutting down");
        }
    }
    tracing::info!("shutting down: finishing messages in flight");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    store.close().await;
    Ok(())
}

/// Brings the AMQP adapters' broker accounts in line with the registry every `every`: a system
/// locked in the console loses its broker access within that time. A failure (the management
/// API away) is logged and tried again next time.
async fn keep_adapter_accounts_in_line(
    management: lienthong_bus::adapters::Management,
    store: Store,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let result = match crate::admin::registered_systems(&store).await {
            Ok(systems) => management.sync(&systems).await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "adapter accounts not brought in line; trying again");
                "failed"
            }
        };
        metrics::counter!("lienthong_adapter_account_syncs_total", "outcome" => outcome)
            .increment(1);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
