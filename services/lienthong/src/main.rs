//! `lienthong`: runs the bus (all services in one process, or chosen ones), and is also the
//! adapter-side client and the admin tool.

mod admin;
mod client_cmd;
mod config;
mod run;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Inter-agency document interchange bus (edXML, QCVN 102:2016)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process.
    Up {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Also register the demo systems of config/demo/systems.json and print their credentials.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the named services (gateway, verifier, translator, router, delivery, ledger,
    /// forwarder, console).
    Serve {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        #[arg(required = true, value_enum)]
        roles: Vec<run::Role>,
    },
    /// Registry and connected systems.
    Admin {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The tamper-evident ledger: verify the hash chain, or anchor its head.
    Audit {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Translate a package between formats (edxml, govn, json, edocvn), as the bus's translator
    /// does, without the bus's TraceHeader. Errors name the field, as the gateway's do.
    Translate {
        file: PathBuf,
        #[arg(long, default_value = "edxml")]
        from: lienthong_edxml::Format,
        #[arg(long)]
        to: lienthong_edxml::Format,
        /// A registry file (getAgenciesList shape) whose `legacyCode`s map the 9-character codes
        /// of e-doc.vn packages.
        #[arg(long)]
        registry: Option<PathBuf>,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read a configuration as the services would (environment overrides included) and report
    /// the first error, naming the key; connects to nothing. Exit 0 when it is usable.
    CheckConfig {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// The roles a process would serve with it (checked as `serve` checks them).
        #[arg(value_enum)]
        roles: Vec<run::Role>,
    },
    /// Write a sample edoc package (for trying the bus).
    Sample {
        #[arg(long)]
        from: String,
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        #[arg(long, default_value_t = 1)]
        number: u64,
        /// Size of a PDF-like attachment, in bytes (0: none).
        #[arg(long, default_value_t = 2048)]
        attachment_bytes: usize,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify a package's XML-DSig signature and its signer's certificate path; prints the verdict
    /// as JSON and exits 0 only for a valid signature.
    Verify {
        file: PathBuf,
        /// Directory of trusted root certificates (PEM or DER).
        #[arg(long)]
        trust: PathBuf,
        /// Directory of intermediate CA certificates, for signers whose `X509Data` carries only
        /// their own certificate.
        #[arg(long)]
        intermediates: Option<PathBuf>,
        /// CRL files (PEM or DER), repeatable.
        #[arg(long = "crl")]
        crls: Vec<PathBuf>,
        /// Refuse a certificate whose issuer has no CRL loaded.
        #[arg(long)]
        require_revocation: bool,
        /// Refuse SHA-1 (accepted with a warning by default).
        #[arg(long)]
        refuse_sha1: bool,
    },
    /// Sign a package (enveloped, RSA-SHA256 or ECDSA-P256-SHA256) for adapters that cannot sign.
    Sign {
        file: PathBuf,
        /// PKCS#8 private key, PEM.
        #[arg(long)]
        key: PathBuf,
        /// The key's certificate, PEM.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(client_cmd::ClientCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the chain; exit 0 only if it is intact, else name the first broken record.
    Verify,
    /// Record the current head as an anchor and print it (keep it somewhere else too).
    Anchor,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Signature verdicts, for security officers.
    Verdicts {
        /// valid, invalid or unsigned.
        #[arg(long, value_parser = ["valid", "invalid", "unsigned"])]
        outcome: Option<String>,
        /// Part of the signer's subject.
        #[arg(long)]
        signer: Option<String>,
        /// Part of the issuer's name.
        #[arg(long)]
        issuer: Option<String>,
        /// Sending agency (OrganId).
        #[arg(long)]
        sender: Option<String>,
        /// From this day (yyyy/MM/dd, Vietnam time).
        #[arg(long)]
        from: Option<String>,
        /// Up to and including this day.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Import agencies from a file in the getAgenciesList shape.
    RegistryImport {
        file: PathBuf,
    },
    /// Print the registry as JSON (the import shape), or CSV.
    RegistryExport {
        #[arg(long)]
        csv: bool,
    },
    /// Lock, unlock or retire an agency (locked: error 23 for senders).
    RegistrySet {
        code: String,
        #[arg(value_parser = ["active", "locked", "retired"])]
        state: String,
    },
    /// Merge agencies into another (the 2025 reorganisation): each is retired, its last day today
    /// (or --on), and what is addressed to it goes to the one it is merged into.
    RegistryMerge {
        /// The agencies merged away.
        #[arg(required = true)]
        codes: Vec<String>,
        /// The agency they are merged into.
        #[arg(long)]
        into: String,
        /// Their last day in service, yyyy/MM/dd (default: today).
        #[arg(long)]
        on: Option<String>,
    },
    /// Add an agency (or replace it), in service from today or --from.
    RegistryAdd {
        code: String,
        #[arg(long)]
        name: String,
        /// central, province, district or commune (default: from the code's shape).
        #[arg(long)]
        level: Option<String>,
        /// The parent agency.
        #[arg(long)]
        parent: Option<String>,
        /// First day in service, yyyy/MM/dd.
        #[arg(long)]
        from: Option<String>,
        /// The bus that serves it, when another bus does (its `federation.bus` name).
        #[arg(long)]
        bus: Option<String>,
    },
    /// The links to other buses: what waits for each peer bus, and whether it is being sent.
    Links,
    /// Find documents by DocumentId, agency (sent or received) and dates, newest first.
    Documents {
        #[arg(long)]
        document_id: Option<String>,
        /// Sender or recipient (OrganId).
        #[arg(long)]
        agency: Option<String>,
        /// From this day (yyyy/MM/dd, Vietnam time).
        #[arg(long)]
        from: Option<String>,
        /// Up to and including this day.
        #[arg(long)]
        to: Option<String>,
        /// The next page: the last docId printed.
        #[arg(long)]
        before: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Any document's trace (every hop and status, with times), as the operator sees it.
    Trace {
        doc_id: String,
    },
    /// Administrative actions, newest first, each naming who acted (the console's audit log).
    AuditLog {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// The dead-letter queue: list it, or replay or discard messages (by --id, or --all).
    Dead {
        #[arg(long, conflicts_with = "discard")]
        replay: bool,
        #[arg(long)]
        discard: bool,
        /// The messages (their messageId) to replay or discard.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Replay or discard every one.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Failed copies, newest first, with the reason.
    Failed {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Send a failed copy to the router again, once its cause is mended.
    Retry {
        doc_id: String,
        /// The recipient (OrganId) of the failed copy.
        to: String,
    },
    /// Set the format an agency's system receives (the translator produces it), and the
    /// 9-character code e-doc.vn systems know it by.
    RegistryFormat {
        code: String,
        #[arg(value_parser = ["edxml", "govn", "json", "edocvn"])]
        format: String,
        /// The agency's 9-character code (CC.BB.Lnn) for e-doc.vn packages.
        #[arg(long)]
        legacy_code: Option<String>,
    },
    /// Register (or re-key) a connected system acting for the given agencies; prints its secret.
    SystemAdd {
        system_id: String,
        #[arg(long)]
        name: String,
        #[arg(long = "organ", required = true)]
        organs: Vec<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Make a security officer token: prints the token (give it to the officer) and the SHA-256
    /// to put in `gateway.security_tokens_sha256`.
    Token,
    /// Make a console user: prints the `[[console.users]]` entry to add to the configuration,
    /// with a salted hash of the password (generated and printed, or read from stdin).
    ConsoleUser {
        name: String,
        #[arg(long, value_parser = ["operator", "security", "viewer"])]
        role: String,
        /// For a viewer: an agency whose documents it sees (repeat for several).
        #[arg(long = "agency")]
        agencies: Vec<String>,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = lienthong_console::ITERATIONS)]
        iterations: u32,
    },
    /// Bind a client certificate to a system: from then on the system is admitted only over
    /// HTTPS presenting one of its bound certificates (bind a renewed one before unbinding the
    /// old one), and that certificate admits no other system.
    SystemBindCertificate {
        system_id: String,
        /// The certificate (PEM; the first certificate in the file).
        #[arg(long, required_unless_present = "sha256", conflicts_with = "sha256")]
        cert_file: Option<std::path::PathBuf>,
        /// Or its SHA-256 fingerprint (64 hex digits, colons allowed).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Unbind a client certificate from a system; with none left, the system is admitted on
    /// its secret alone again.
    SystemUnbindCertificate {
        system_id: String,
        #[arg(long, required_unless_present = "sha256", conflicts_with = "sha256")]
        cert_file: Option<std::path::PathBuf>,
        #[arg(long)]
        sha256: Option<String>,
    },
    SystemLock {
        system_id: String,
    },
    SystemUnlock {
        system_id: String,
    },
    SystemRemove {
        system_id: String,
    },
    SystemList,
    /// Give a system a broker account for its AMQP adapter (`[amqp_adapters]`): it may consume
    /// one queue, `{prefix}.adapter.{systemId}`, bound to `{prefix}.inbox` with the OrganIds the
    /// system acts for, and nothing else. Prints how to connect. Run again to re-key.
    AdapterAccount {
        system_id: String,
        /// Log in with a client certificate (EXTERNAL) whose common name is the system id,
        /// instead of a password.
        #[arg(long, conflicts_with = "password_stdin")]
        certificate: bool,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a system's broker account, its connections and its queue.
    AdapterAccountRemove {
        system_id: String,
    },
    /// Bring the adapter accounts in line with the registry now (the gateway does it every
    /// `amqp_adapters.sync_secs`): locked systems lose access, removed ones their account,
    /// agencies taken from a system their bindings. Prints what changed.
    AdapterAccountsSync,
}

/// mimalloc, not the C library's allocator: a document is many short-lived buffers (the package,
/// its parse, renditions, messages, statements' values) handed between threads, and glibc's
/// malloc, its frees and their consolidation were about a tenth of a worker's CPU in a profile
/// at full load (`docs/performance.md`). Its third generation: the second took 8.2% more CPU a
/// document, measured in turns; huge pages for its arenas changed nothing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The processes that run services name themselves in traces and may export them, and may
    // be given their number of threads. A configuration that does not load is reported where
    // the command loads it.
    let (service, otlp, threads) = match &cli.command {
        Command::Up { config, .. } | Command::Serve { config, .. } => {
            match config::Config::load(config) {
                Ok(c) => (
                    format!(
                        "lienthong {}",
                        c.federation
                            .as_ref()
                            .map_or(c.bus.prefix.as_str(), |f| f.bus.as_str())
                    ),
                    c.telemetry.otlp_endpoint,
                    c.runtime.worker_threads,
                ),
                Err(_) => ("lienthong".to_owned(), None, None),
            }
        }
        _ => ("lienthong".to_owned(), None, None),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = threads {
        runtime.worker_threads(n);
    }
    runtime
        .build()
        .context("starting the async runtime")?
        .block_on(run_command(cli, service, otlp))
}

async fn run_command(cli: Cli, service: String, otlp: Option<String>) -> anyhow::Result<()> {
    let _traces = lienthong_telemetry::init(&service, lienthong_telemetry::otlp_endpoint(otlp));
    match cli.command {
        Command::Up { config, demo } => {
            let mut cfg = config::Config::load(&config)?;
            let demo_users = if demo {
                demo_console_users(&mut cfg, &read_demo_systems(&config)?)?
            } else {
                Vec::new()
            };
            let demo_systems = if demo {
                read_demo_systems(&config)?
            } else {
                Vec::new()
            };
            // Registered before serving, so the printed credentials work at once.
            if !demo_systems.is_empty() {
                register_demo(&cfg, &demo_systems).await?;
            }
            let roles = run::all_roles(&cfg);
            run::run(cfg, &roles, |_, addr| {
                let addr = addr.map(|a| format!("http://{a}")).unwrap_or_default();
                println!("lienthong is up. Gateway: {addr}");
                if !demo_users.is_empty() {
                    println!("Console users (name / password -> role):");
                    for (name, password, role) in &demo_users {
                        println!("  {name} / {password} -> {role}");
                    }
                }
                if !demo_systems.is_empty() {
                    println!("Demo systems (X-SystemId / X-SecretKey -> agencies):");
                    for s in &demo_systems {
                        println!(
                            "  {} / {} -> {}",
                            s.system_id,
                            s.secret,
                            s.organs.join(", ")
                        );
                    }
                }
            })
            .await
        }
        Command::Serve { config, roles } => {
            let cfg = config::Config::load(&config)?;
            run::run(cfg, &roles, |_, addr| {
                if let Some(a) = addr {
                    println!("gateway listening on http://{a}");
                }
            })
            .await
        }
        Command::Admin { config, command } => admin_cmd(&config, command).await,
        Command::Audit { config, command } => {
            let cfg = config::Config::load(&config)?;
            let store = lienthong_store::Store::connect(&cfg.store)
                .await
                .context("opening the store")?;
            let result = match command {
                AuditCommand::Verify => {
                    let check = store.verify_chain().await?;
                    println!("{}", serde_json::to_string_pretty(&check)?);
                    matches!(check, lienthong_store::ChainCheck::Intact { .. })
                }
                AuditCommand::Anchor => {
                    let (seq, hash) = store.anchor_chain().await?;
                    println!("{{\"seq\": {seq}, \"hash\": \"{hash}\"}}");
                    true
                }
            };
            store.close().await;
            if !result {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CheckConfig { config, roles } => {
            let mut cfg = config::Config::load(&config)?;
            run::check_roles(&mut cfg, &roles).with_context(|| format!("{}", config.display()))?;
            println!(
                "{}: ok (store {}, bus prefix {} on {}, gateway {}{}{})",
                config.display(),
                cfg.store.url.split('@').next_back().unwrap_or_default(),
                cfg.bus.prefix,
                cfg.bus.url.split('@').next_back().unwrap_or_default(),
                cfg.gateway.listen,
                if cfg.console.is_some() {
                    ", console"
                } else {
                    ""
                },
                match &cfg.federation {
                    Some(f) => format!(", federation bus {}", f.bus),
                    None => String::new(),
                }
            );
            Ok(())
        }
        Command::Translate {
            file,
            from,
            to,
            registry,
            output,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let agencies = match &registry {
                Some(path) => admin::read_registry(path)?,
                None => Vec::new(),
            };
            let pairs = agencies
                .iter()
                .filter_map(|a| {
                    Some((
                        a.legacy_code.clone()?,
                        lienthong_edxml::OrganId::parse(&a.code).ok()?,
                    ))
                })
                .collect::<Vec<_>>();
            let codes = lienthong_edxml::CodeMap::new(pairs.iter().map(|(l, o)| (l.as_str(), o)))?;
            let message = lienthong_translate::decode(from, &bytes, &codes)
                .with_context(|| format!("{} is not a valid {from} package", file.display()))?;
            let out = lienthong_translate::encode(to, &message, &codes)
                .context("give --registry with the agencies' legacyCode")?;
            write_out(output.as_deref(), &out)?;
            Ok(())
        }
        Command::Sample {
            from,
            to,
            number,
            attachment_bytes,
            output,
        } => {
            let from = lienthong_edxml::OrganId::parse(&from)
                .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let to = to
                .iter()
                .map(|t| {
                    lienthong_edxml::OrganId::parse(t).map_err(|e| anyhow::anyhow!("--to: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bytes = lienthong_edxml::write_edoc(&lienthong_edxml::sample::edoc(
                &from,
                &to,
                number,
                attachment_bytes,
            ));
            write_out(output.as_deref(), &bytes)?;
            Ok(())
        }
        Command::Verify {
            file,
            trust,
            intermediates,
            crls,
            require_revocation,
            refuse_sha1,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let crls: Vec<&std::path::Path> = crls.iter().map(PathBuf::as_path).collect();
            let mut store = lienthong_xmldsig::TrustStore::load(&trust, &crls)
                .with_context(|| format!("loading trust anchors from {}", trust.display()))?;
            if let Some(dir) = &intermediates {
                store.load_intermediates(dir).with_context(|| {
                    format!("loading intermediate certificates from {}", dir.display())
                })?;
            }
            if store.anchors() == 0 {
                anyhow::bail!(
                    "--trust {}: no certificate files (.pem, .crt, .cer, .der) found",
                    trust.display()
                );
            }
            let policy = lienthong_xmldsig::Policy {
                require_revocation_data: require_revocation,
                allow_sha1: !refuse_sha1,
                ..lienthong_xmldsig::Policy::default()
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            let verdict = lienthong_xmldsig::check_package(&bytes, &store, &policy, now);
            println!("{}", serde_json::to_string_pretty(&verdict)?);
            if !verdict.is_valid() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Sign {
            file,
            key,
            cert,
            output,
        } => {
            let pem = |path: &PathBuf, label: &str| -> anyhow::Result<Vec<u8>> {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                lienthong_xmldsig::trust::pem_blocks(&bytes, label)
                    .and_then(|mut b| (!b.is_empty()).then(|| b.remove(0)))
                    .with_context(|| format!("{}: no PEM block `{label}`", path.display()))
            };
            let package =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let signed = lienthong_xmldsig::sign(
                &package,
                &pem(&key, "PRIVATE KEY")?,
                &pem(&cert, "CERTIFICATE")?,
            )?;
            write_out(output.as_deref(), &signed)?;
            Ok(())
        }
        Command::Client(cmd) => client_cmd::run(cmd).await,
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoSystem {
    system_id: String,
    name: String,
    secret: String,
    organs: Vec<String>,
}

fn read_demo_systems(config: &std::path::Path) -> anyhow::Result<Vec<DemoSystem>> {
    let dir = config.parent().unwrap_or_else(|| std::path::Path::new("."));
    let path = dir.join("demo/systems.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

async fn register_demo(cfg: &config::Config, systems: &[DemoSystem]) -> anyhow::Result<()> {
    let store = lienthong_store::Store::connect(&cfg.store).await?;
    for s in systems {
        store
            .put_system(&s.system_id, &s.name, &s.secret, &s.organs)
            .await?;
    }
    store.close().await;
    Ok(())
}

/// For the demo, when the console has no users: an operator, a security officer, and a viewer
/// for the first demo system's agencies, with passwords made now (kept in memory only).
fn demo_console_users(
    cfg: &mut config::Config,
    systems: &[DemoSystem],
) -> anyhow::Result<Vec<(String, String, &'static str)>> {
    let Some(console) = cfg.console.as_mut().filter(|c| c.users.is_empty()) else {
        return Ok(Vec::new());
    };
    let viewer_agencies = systems
        .first()
        .map(|s| s.organs.clone())
        .unwrap_or_default();
    let mut printed = Vec::new();
    for (name, role) in [
        ("vanhanh", lienthong_console::Role::Operator),
        ("antoan", lienthong_console::Role::Security),
        ("vanthu", lienthong_console::Role::Viewer),
    ] {
        if role == lienthong_console::Role::Viewer && viewer_agencies.is_empty() {
            continue;
        }
        let password = admin::new_secret()?[..16].to_owned();
        console.users.push(lienthong_console::User {
            name: name.to_owned(),
            role,
            // Fewer iterations than for real users: the password is random and lives one run.
            password: lienthong_console::hash_password(&password, 100_000)
                .map_err(|e| anyhow::anyhow!(e))?,
            agencies: if role == lienthong_console::Role::Viewer {
                viewer_agencies.clone()
            } else {
                Vec::new()
            },
        });
        printed.push((name.to_owned(), password, role.as_str()));
    }
    Ok(printed)
}

/// Prints a `[[console.users]]` entry; checks it as the configuration will be checked.
fn console_user(
    name: &str,
    role: &str,
    agencies: &[String],
    password_stdin: bool,
    iterations: u32,
) -> anyhow::Result<()> {
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (admin::new_secret()?, true)
    };
    if password.chars().count() < 12 {
        anyhow::bail!("password: 12 characters or more");
    }
    let user = lienthong_console::User {
        name: name.to_owned(),
        role: role.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        password: lienthong_console::hash_password(&password, iterations)
            .map_err(|e| anyhow::anyhow!(e))?,
        agencies: agencies.to_vec(),
    };
    lienthong_console::users::check_users(std::slice::from_ref(&user))
        .map_err(|e| anyhow::anyhow!(e))?;
    if generated {
        println!("# password for {name} (give it to them; only its hash is kept): {password}");
    }
    println!("[[console.users]]");
    println!("name = {:?}", user.name);
    println!("role = {:?}", role);
    println!("password = {:?}", user.password);
    if !agencies.is_empty() {
        println!("agencies = {:?}", agencies);
    }
    Ok(())
}

async fn admin_cmd(config: &std::path::Path, command: AdminCommand) -> anyhow::Result<()> {
    // Needs no configuration: it prints an entry for it.
    if let AdminCommand::ConsoleUser {
        name,
        role,
        agencies,
        password_stdin,
        iterations,
    } = &command
    {
        return console_user(name, role, agencies, *password_stdin, *iterations);
    }
    let cfg = config::Config::load(config)?;
    let store = lienthong_store::Store::connect(&cfg.store)
        .await
        .context("opening the store")?;
    let audit = audit_line(&command);
    // A change to a connected system reaches its AMQP adapter's account at once (the gateway's
    // periodic sync would within `sync_secs`).
    let touches_systems = matches!(
        command,
        AdminCommand::SystemAdd { .. }
            | AdminCommand::SystemLock { .. }
            | AdminCommand::SystemUnlock { .. }
            | AdminCommand::SystemRemove { .. }
    );
    match command {
        AdminCommand::RegistryImport { file } => {
            let n = admin::import_registry(&store, &file).await?;
            println!("imported {n} agencies");
        }
        AdminCommand::Verdicts {
            outcome,
            signer,
            issuer,
            sender,
            from,
            to,
            format,
            limit,
        } => {
            let day = |field: &str, d: &Option<String>| -> anyhow::Result<Option<i64>> {
                d.as_deref()
                    .map(|d| {
                        lienthong_edxml::EdxmlDate::parse(d)
                            .map(|d| {
                                d.0.midnight().assume_utc().unix_timestamp() * 1000 - 7 * 3_600_000
                            })
                            .map_err(|e| anyhow::anyhow!("--{field}: {e}"))
                    })
                    .transpose()
            };
            let filter = lienthong_store::VerdictFilter {
                outcome,
                signer,
                issuer,
                sender,
                from_ms: day("from", &from)?,
                to_ms: day("to", &to)?.map(|t| t + 86_400_000),
                limit: Some(limit),
            };
            let rows = store.verdicts(&filter).await?;
            if format == "csv" {
                print!("{}", lienthong_gateway::verdicts_csv(&rows));
            } else {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            }
        }
        AdminCommand::Documents {
            document_id,
            agency,
            from,
            to,
            before,
            limit,
        } => {
            let (from_ms, to_ms) = lienthong_gateway::date_range(from.as_deref(), to.as_deref())
                .map_err(|e| anyhow::anyhow!("{}", e.desc))?;
            let docs = store
                .search_documents(&lienthong_store::DocumentSearch {
                    doc_id: None,
                    document_id,
                    agency,
                    from_ms,
                    to_ms,
                    before,
                    limit,
                })
                .await?;
            for d in docs {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.doc_id,
                    d.message_type.as_str(),
                    d.sender,
                    d.document_id,
                    d.subject.unwrap_or_default()
                );
            }
        }
        AdminCommand::Trace { doc_id } => {
            let events = store.trace(&doc_id).await?;
            if events.is_empty() {
                anyhow::bail!("no document {doc_id} in the ledger");
            }
            println!("{}", serde_json::to_string_pretty(&events)?);
        }
        AdminCommand::AuditLog { limit } => {
            let events = store.audit_log(limit.clamp(1, 100_000)).await?;
            println!("{}", serde_json::to_string_pretty(&events)?);
        }
        AdminCommand::Dead {
            replay,
            discard,
            ids,
            all,
            limit,
        } => {
            let action = match (replay, discard) {
                (true, _) => lienthong_bus::DeadAction::Replay,
                (_, true) => lienthong_bus::DeadAction::Discard,
                _ => lienthong_bus::DeadAction::Keep,
            };
            if action != lienthong_bus::DeadAction::Keep && ids.is_empty() && !all {
                anyhow::bail!("--replay and --discard need --id ID (repeatable) or --all");
            }
            let ids = (!all && !ids.is_empty()).then_some(ids.as_slice());
            let letters = lienthong_bus::Publisher::new(&cfg.bus, "lienthong-admin")
                .dead_letters(action, ids, limit)
                .await
                .context("reading the dead-letter queue")?;
            println!("{}", serde_json::to_string_pretty(&letters)?);
        }
        AdminCommand::Failed { limit } => {
            for e in store.failed_legs(limit).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    e.document.doc_id,
                    e.leg.recipient,
                    e.document.document_id,
                    e.leg.reason.unwrap_or_default()
                );
            }
        }
        AdminCommand::Retry { doc_id, to } => {
            let publisher = lienthong_bus::Publisher::new(&cfg.bus, "lienthong-admin");
            lienthong_router::retry_copy(&store, &publisher, &doc_id, &to).await?;
            println!("{doc_id} / {to} sent to the router again");
        }
        AdminCommand::Links => {
            if cfg.bus.links.is_empty() {
                println!("this bus has no links to other buses (no [federation] section)");
            }
            let publisher = lienthong_bus::Publisher::observer(&cfg.bus, "lienthong-admin");
            let t = publisher.topology();
            for bus in &cfg.bus.links {
                let (waiting, forwarders) = publisher
                    .queue_depth(&t.link_queue(bus))
                    .await
                    .with_context(|| format!("reading the link queue of {bus}"))?;
                println!("{bus}\twaiting {waiting}\tforwarders {forwarders}");
            }
        }
        AdminCommand::RegistryExport { csv } => {
            let agencies = store.agencies().await?;
            if csv {
                print!("{}", lienthong_store::registry_csv(&agencies));
            } else {
                println!("{}", serde_json::to_string_pretty(&agencies)?);
            }
        }
        AdminCommand::RegistrySet { code, state } => {
            let state: lienthong_store::AgencyState = state.parse().map_err(anyhow::Error::msg)?;
            if !store.set_agency_state(&code, state).await? {
                anyhow::bail!("no agency {code} in the registry");
            }
            println!("{code} is now {state}");
        }
        AdminCommand::RegistryMerge { codes, into, on } => {
            let day = match on {
                Some(d) => lienthong_edxml::EdxmlDate::parse(&d)
                    .map_err(|e| anyhow::anyhow!("--on: {e}"))?
                    .to_string(),
                None => lienthong_store::today(),
            };
            let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
            if let Err(why) = store.merge_agencies(&codes, &into, &day).await? {
                anyhow::bail!("{why}");
            }
            println!("{} merged into {into} (last day {day})", codes.join(", "));
        }
        AdminCommand::RegistryAdd {
            code,
            name,
            level,
            parent,
            from,
            bus,
        } => {
            lienthong_edxml::OrganId::parse(&code).map_err(|e| anyhow::anyhow!("{code}: {e}"))?;
            if let Some(b) = &bus {
                lienthong_store::check_bus_name(b).map_err(|e| anyhow::anyhow!("--bus: {e}"))?;
            }
            if let Some(p) = &parent {
                lienthong_edxml::OrganId::parse(p).map_err(|e| anyhow::anyhow!("--parent: {e}"))?;
            }
            let level = match level {
                Some(l) => l
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--level: {e}"))?,
                None => lienthong_store::Level::from_code_shape(&code)
                    .context("--level: cannot be derived from the code")?,
            };
            let valid_from = match from {
                Some(d) => Some(
                    lienthong_edxml::EdxmlDate::parse(&d)
                        .map_err(|e| anyhow::anyhow!("--from: {e}"))?
                        .to_string(),
                ),
                None => None,
            };
            store
                .upsert_agencies(&[lienthong_store::Agency {
                    code: code.clone(),
                    name,
                    pcode: parent,
                    level,
                    state: lienthong_store::AgencyState::Active,
                    email: None,
                    phone: None,
                    address: None,
                    receive_format: Default::default(),
                    legacy_code: None,
                    valid_from,
                    valid_to: None,
                    successor: None,
                    bus,
                }])
                .await?;
            println!("{code} added");
        }
        AdminCommand::RegistryFormat {
            code,
            format,
            legacy_code,
        } => {
            let format: lienthong_edxml::Format = format.parse().map_err(anyhow::Error::msg)?;
            if let Some(l) = &legacy_code {
                if !lienthong_edxml::legacy::is_legacy_code(l) {
                    anyhow::bail!("--legacy-code `{l}` is not a 9-character code CC.BB.Lnn");
                }
                if let Some(holder) = store
                    .agencies()
                    .await?
                    .into_iter()
                    .find(|a| a.legacy_code.as_deref() == Some(l) && a.code != code)
                {
                    anyhow::bail!("--legacy-code `{l}` already belongs to {}", holder.code);
                }
            }
            if !store.set_agency_format(&code, format).await? {
                anyhow::bail!("no agency {code} in the registry");
            }
            if let Some(l) = &legacy_code {
                store.set_legacy_code(&code, Some(l)).await?;
            }
            if format == lienthong_edxml::Format::Edocvn
                && store
                    .agency(&code)
                    .await?
                    .and_then(|a| a.legacy_code)
                    .is_none()
            {
                println!("warning: {code} has no 9-character code; give it one with --legacy-code");
            }
            println!("{code} now receives {format}");
        }
        AdminCommand::SystemAdd {
            system_id,
            name,
            organs,
            secret,
        } => {
            for o in &organs {
                lienthong_edxml::OrganId::parse(o).map_err(|e| anyhow::anyhow!("--organ: {e}"))?;
            }
            let secret = match secret {
                Some(s) => s,
                None => admin::new_secret()?,
            };
            store
                .put_system(&system_id, &name, &secret, &organs)
                .await?;
            println!("system {system_id} acts for {}", organs.join(", "));
            println!("X-SecretKey: {secret}");
            println!("(the bus keeps only a hash of it: store it now)");
        }
        AdminCommand::ConsoleUser { .. } => {}
        AdminCommand::Token => {
            let token = admin::new_secret()?;
            println!("token:  {token}");
            println!("sha256: {}", lienthong_store::sha256_hex(token.as_bytes()));
        }
        AdminCommand::SystemBindCertificate {
            system_id,
            cert_file,
            sha256,
        } => {
            let certificate = certificate_arg(cert_file.as_deref(), sha256.as_deref())?;
            match store
                .bind_certificate(&system_id, &certificate.sha256)
                .await?
            {
                Ok(()) => println!(
                    "system {system_id} is bound to the client certificate with SHA-256 {}",
                    certificate.sha256
                ),
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        AdminCommand::SystemUnbindCertificate {
            system_id,
            cert_file,
            sha256,
        } => {
            let certificate = certificate_arg(cert_file.as_deref(), sha256.as_deref())?;
            if !store
                .unbind_certificate(&system_id, &certificate.sha256)
                .await?
            {
                anyhow::bail!(
                    "the certificate with SHA-256 {} is not bound to system {system_id}",
                    certificate.sha256
                );
            }
            println!(
                "system {system_id} is no longer bound to the certificate with SHA-256 {}",
                certificate.sha256
            );
        }
        AdminCommand::SystemLock { system_id } => set_locked(&store, &system_id, true).await?,
        AdminCommand::SystemUnlock { system_id } => set_locked(&store, &system_id, false).await?,
        AdminCommand::SystemRemove { system_id } => {
            if !store.remove_system(&system_id).await? {
                anyhow::bail!("no system {system_id}");
            }
            println!("system {system_id} removed");
        }
        AdminCommand::SystemList => {
            println!("{}", serde_json::to_string_pretty(&store.systems().await?)?);
        }
        AdminCommand::AdapterAccount {
            system_id,
            certificate,
            password_stdin,
        } => {
            let management = admin::management(&cfg)?;
            let system = store
                .system(&system_id)
                .await?
                .with_context(|| format!("no system {system_id} in the registry"))?;
            if system.locked {
                anyhow::bail!("system {system_id} is locked: unlock it first");
            }
            let login = if certificate {
                lienthong_bus::adapters::Login::Certificate
            } else if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                let p = line.trim_end_matches(['\r', '\n']).to_owned();
                if p.is_empty() {
                    anyhow::bail!("--password-stdin: the first line of stdin is empty");
                }
                lienthong_bus::adapters::Login::Password(p)
            } else {
                lienthong_bus::adapters::Login::Password(admin::new_secret()?)
            };
            management.grant(&system_id, &system.organs, &login).await?;
            let queue = management.queue(&system_id);
            let url = management.adapter_url();
            println!("account: {system_id} (vhost {})", management.vhost());
            match &login {
                lienthong_bus::adapters::Login::Password(p) if !password_stdin => {
                    println!("password: {p}");
                    println!("(RabbitMQ keeps only a hash of it: store it now)");
                }
                lienthong_bus::adapters::Login::Password(_) => {}
                lienthong_bus::adapters::Login::Certificate => println!(
                    "login: EXTERNAL, with a client certificate whose common name is {system_id} (add ?auth_mechanism=external to the URL)"
                ),
            }
            println!("url: {url}");
            println!("queue: {queue}");
            println!(
                "bind it to {}.inbox with: {}",
                cfg.bus.prefix,
                system.organs.join(", ")
            );
        }
        AdminCommand::AdapterAccountRemove { system_id } => {
            if !admin::management(&cfg)?.revoke(&system_id).await? {
                anyhow::bail!("system {system_id} has no adapter account on this bus");
            }
            println!("the broker account of {system_id} is removed");
        }
        AdminCommand::AdapterAccountsSync => {
            let changes = admin::management(&cfg)?
                .sync(&admin::registered_systems(&store).await?)
                .await?;
            if changes.is_empty() {
                println!("the adapter accounts are in line with the registry");
            }
            for c in changes {
                println!("{c}");
            }
        }
    }
    if let Some((area, organ, detail)) = audit {
        admin::record_audit(&store, area, &organ, &detail).await?;
    }
    if touches_systems && cfg.amqp_adapters.is_some() {
        let synced = async {
            let systems = admin::registered_systems(&store).await?;
            Ok::<_, anyhow::Error>(admin::management(&cfg)?.sync(&systems).await?)
        };
        match synced.await {
            Ok(changes) => {
                for c in changes {
                    println!("adapter account {c}");
                }
            }
            // The registry changed; the gateway brings the accounts in line when it can.
            Err(e) => eprintln!("warning: adapter accounts not brought in line now: {e:#}"),
        }
    }
    store.close().await;
    Ok(())
}

/// What a command changes, for the audit log: (area, agency or system, what was done); `None`
/// for a command that only reads.
fn audit_line(c: &AdminCommand) -> Option<(&'static str, String, String)> {
    let registry = |organ: &str, what: String| Some(("registry", organ.to_owned(), what));
    match c {
        AdminCommand::RegistryImport { file } => {
            registry("-", format!("agencies imported from {}", file.display()))
        }
        AdminCommand::RegistrySet { code, state } => registry(code, format!("{code} set {state}")),
        AdminCommand::RegistryMerge { codes, into, .. } => {
            registry(into, format!("{} merged into {into}", codes.join(", ")))
        }
        AdminCommand::RegistryAdd { code, .. } => {
            registry(code, format!("{code} added or replaced"))
        }
        AdminCommand::RegistryFormat { code, format, .. } => {
            registry(code, format!("{code} receives {format}"))
        }
        AdminCommand::SystemAdd {
            system_id, organs, ..
        } => registry(
            system_id,
            format!("system {system_id} added, acting for {}", organs.join(", ")),
        ),
        AdminCommand::SystemBindCertificate {
            system_id,
            cert_file,
            sha256,
        }
        | AdminCommand::SystemUnbindCertificate {
            system_id,
            cert_file,
            sha256,
        } => registry(
            system_id,
            format!(
                "system {system_id} {} the client certificate {}",
                if matches!(c, AdminCommand::SystemBindCertificate { .. }) {
                    "bound to"
                } else {
                    "unbound from"
                },
                certificate_arg(cert_file.as_deref(), sha256.as_deref())
                    .map(|c| c.sha256)
                    .unwrap_or_default()
            ),
        ),
        AdminCommand::SystemLock { system_id } => {
            registry(system_id, format!("system {system_id} locked"))
        }
        AdminCommand::SystemUnlock { system_id } => {
            registry(system_id, format!("system {system_id} unlocked"))
        }
        AdminCommand::SystemRemove { system_id } => {
            registry(system_id, format!("system {system_id} removed"))
        }
        AdminCommand::AdapterAccount {
            system_id,
            certificate,
            ..
        } => registry(
            system_id,
            format!(
                "broker account of system {system_id} set ({})",
                if *certificate {
                    "client certificate"
                } else {
                    "password"
                }
            ),
        ),
        AdminCommand::AdapterAccountRemove { system_id } => registry(
            system_id,
            format!("broker account of system {system_id} removed"),
        ),
        AdminCommand::Retry { doc_id, to } => Some((
            "operations",
            to.clone(),
            format!("failed copy {doc_id} / {to} sent to the router again"),
        )),
        AdminCommand::Dead {
            replay,
            discard,
            ids,
            all,
            ..
        } if *replay || *discard => Some((
            "operations",
            "-".to_owned(),
            format!(
                "dead letters {} ({})",
                if *replay { "replayed" } else { "discarded" },
                if *all {
                    "all".to_owned()
                } else {
                    ids.join(", ")
                }
            ),
        )),
        _ => None,
    }
}

/// A client certificate named by `--cert-file` or `--sha256`.
fn certificate_arg(
    cert_file: Option<&std::path::Path>,
    sha256: Option<&str>,
) -> anyhow::Result<lienthong_https::PeerCertificate> {
    match (cert_file, sha256) {
        (Some(path), _) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--cert-file {}", path.display()))?;
            lienthong_https::PeerCertificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--cert-file {}: {e}", path.display()))
        }
        (None, Some(h)) => lienthong_https::PeerCertificate::from_sha256(h)
            .map_err(|e| anyhow::anyhow!("--sha256: {e}")),
        (None, None) => anyhow::bail!("give the certificate with --cert-file or --sha256"),
    }
}

async fn set_locked(
    store: &lienthong_store::Store,
    system_id: &str,
    locked: bool,
) -> anyhow::Result<()> {
    if !store.set_system_locked(system_id, locked).await? {
        anyhow::bail!("no system {system_id}");
    }
    println!(
        "system {system_id} {}",
        if locked { "locked" } else { "unlocked" }
    );
    Ok(())
}

/// Writes to the file given, or to stdout.
fn write_out(output: Option<&std::path::Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            use std::io::Write;
            Ok(std::io::stdout().write_all(bytes)?)
        }
    }
}
