//! The adapter-side client commands: what an agency system does, from a shell.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use lienthong_client::Client;
use lienthong_edxml::{Organization, StatusCode};
use lienthong_translate::Message;

#[derive(Debug, Args)]
pub struct Connection {
    /// Gateway URL.
    #[arg(long, env = "LIENTHONG_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// X-SystemId.
    #[arg(long, env = "LIENTHONG_SYSTEM_ID")]
    system_id: String,
    /// X-SecretKey.
    #[arg(long, env = "LIENTHONG_SECRET", hide_env_values = true)]
    secret: String,
    /// For an https URL: the CA that issued the gateway's certificate (besides the system's).
    #[arg(long, env = "LIENTHONG_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// This system's client certificate (PEM, with its chain), for gateways that ask for one.
    #[arg(long, env = "LIENTHONG_CERT_FILE", requires = "key_file")]
    cert_file: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "LIENTHONG_KEY_FILE", requires = "cert_file")]
    key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Send a package (sendEdoc; a JSON package through the JSON interface); prints its docId.
    Send {
        #[command(flatten)]
        conn: Connection,
        file: PathBuf,
        #[arg(long = "type", default_value = "edoc", value_parser = ["edoc", "status"])]
        message_type: String,
        /// The package's format: edxml, govn (the flat go.vn variant) or json.
        #[arg(long, default_value = "edxml", value_parser = ["edxml", "govn", "json"])]
        format: String,
    },
    /// List the inbox (getReceivedEdocList).
    Inbox {
        #[command(flatten)]
        conn: Connection,
        #[arg(long = "type", default_value = "edoc", value_parser = ["edoc", "status"])]
        message_type: String,
        /// initial, processing, done, fail (comma-separated) or all.
        #[arg(long)]
        status: Option<String>,
    },
    /// Fetch a package byte for byte (getEdoc).
    Fetch {
        #[command(flatten)]
        conn: Connection,
        doc_id: String,
        /// Write the package here instead of printing the summary.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write your agency's rendition (its registry format, with the bus's TraceHeader)
        /// instead of the sender's original.
        #[arg(long, requires = "output")]
        rendition: bool,
    },
    /// Set the transport status of your copy (updateStatus): processing, done, fail.
    Update {
        #[command(flatten)]
        conn: Connection,
        doc_id: String,
        #[arg(value_parser = ["processing", "done", "fail"])]
        status: String,
    },
    /// Send a business status (01 arrived, 02 refused, 03 accepted, 04, 05, 06, 13, 15, 16) about a
    /// document you received (or, for 13, sent): builds the status package and sends it.
    Status {
        #[command(flatten)]
        conn: Connection,
        doc_id: String,
        #[arg(long)]
        code: String,
        /// The agency you answer as (default: the first recipient copy you hold).
        #[arg(long = "as")]
        as_organ: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Per-recipient delivery and status of what you sent (getSentEdocList).
    Sent {
        #[command(flatten)]
        conn: Connection,
        doc_id: Option<String>,
    },
    /// The document's trace.
    Trace {
        #[command(flatten)]
        conn: Connection,
        doc_id: String,
    },
    /// The agency registry (getAgenciesList).
    Agencies {
        #[command(flatten)]
        conn: Connection,
    },
    /// Listen for what arrives, over AMQP, as an AMQP adapter does (with the broker account
    /// `lienthong admin adapter-account` made): declares this system's queue
    /// `{prefix}.adapter.{systemId}`, binds it to `{prefix}.inbox` for each --organ, and prints
    /// each notification as a JSON line, acknowledging it only after (with --fetch, after the
    /// package is saved).
    Watch {
        #[command(flatten)]
        conn: Connection,
        /// The broker: `amqp://SYSTEM:PASSWORD@host:5672/vhost`, or
        /// `amqps://host:5671/vhost?auth_mechanism=external` to log in with --cert-file.
        #[arg(long, env = "LIENTHONG_AMQP_URL", hide_env_values = true)]
        amqp_url: String,
        /// The bus's name prefix (`bus.prefix`).
        #[arg(long, env = "LIENTHONG_BUS_PREFIX", default_value = "lienthong")]
        prefix: String,
        /// An agency your system acts for (repeat for several).
        #[arg(long = "organ", required = true)]
        organs: Vec<String>,
        /// For an amqps URL: the CA of the broker's certificate (besides the system's roots).
        #[arg(long, env = "LIENTHONG_AMQP_CA_FILE")]
        amqp_ca_file: Option<PathBuf>,
        /// Save each package (its rendition for your agency) here as `{docId}.pkg` first.
        #[arg(long)]
        fetch: Option<PathBuf>,
        /// Stop after this many notifications.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// The registry's 9-character codes, from `getAgenciesList`.
fn code_map(agencies: &[serde_json::Value]) -> anyhow::Result<lienthong_edxml::CodeMap> {
    let mut pairs = Vec::new();
    for a in agencies {
        if let (Some(code), Some(legacy)) = (a["code"].as_str(), a["legacyCode"].as_str()) {
            pairs.push((legacy.to_owned(), lienthong_edxml::OrganId::parse(code)?));
        }
    }
    Ok(lienthong_edxml::CodeMap::new(
        pairs.iter().map(|(l, o)| (l.as_str(), o)),
    )?)
}

fn client(c: &Connection) -> anyhow::Result<Client> {
    let tls = lienthong_client::Tls {
        ca_file: c.ca_file.clone(),
        identity: c.cert_file.clone().zip(c.key_file.clone()),
    };
    Ok(Client::with_http(
        &c.url,
        &c.system_id,
        &c.secret,
        tls.http_client()?,
    ))
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Send {
            conn,
            file,
            message_type,
            format,
        } => {
            // Streamed from the file: a large package is never held.
            let doc_id = client(&conn)?
                .send_file(&file, &message_type, &format)
                .await?;
            println!("{doc_id}");
        }
        ClientCommand::Inbox {
            conn,
            message_type,
            status,
        } => {
            let extra: Vec<(&str, &str)> = status
                .as_deref()
                .map(|s| vec![("status", s)])
                .unwrap_or_default();
            print(&client(&conn)?.inbox(&message_type, &extra).await?)?;
        }
        ClientCommand::Fetch {
            conn,
            doc_id,
            output,
            rendition,
        } => {
            match output {
                Some(path) => {
                    // Streamed to the file: a large package is never held.
                    let (format, sha256, size) =
                        client(&conn)?.fetch_file(&doc_id, rendition, &path).await?;
                    println!(
                        "{size} bytes written to {} ({format}, sha256 {sha256})",
                        path.display()
                    );
                }
                None => {
                    let fetched = client(&conn)?.fetch(&doc_id).await?;
                    let mut summary = fetched.summary;
                    if let Some(obj) = summary.as_object_mut() {
                        obj.remove("edxml");
                    }
                    print(&summary)?;
                }
            }
        }
        ClientCommand::Update {
            conn,
            doc_id,
            status,
        } => {
            client(&conn)?.update_status(&doc_id, &status).await?;
            println!("{doc_id}: {status}");
        }
        ClientCommand::Status {
            conn,
            doc_id,
            code,
            as_organ,
            description,
        } => {
            let code = StatusCode::parse(&code).map_err(|e| anyhow::anyhow!("--code: {e}"))?;
            let c = client(&conn)?;
            let fetched = c.fetch(&doc_id).await?;
            // The original, in whatever format it was sent (e-doc.vn names agencies by the
            // registry's 9-character codes).
            let format: lienthong_edxml::Format = fetched.summary["format"]
                .as_str()
                .unwrap_or("edxml")
                .parse()
                .map_err(anyhow::Error::msg)?;
            let codes = if format == lienthong_edxml::Format::Edocvn {
                code_map(&c.agencies().await?)?
            } else {
                lienthong_edxml::CodeMap::default()
            };
            let Message::Edoc(original) =
                lienthong_translate::decode(format, &fetched.bytes, &codes)?
            else {
                anyhow::bail!("{doc_id} is a status package; statuses answer documents");
            };
            let from = match as_organ {
                Some(o) => o,
                None if code.is_sent_by_original_sender() => original.header.sender().to_string(),
                None => fetched.summary["to"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .context("you hold no copy of this document; give --as")?,
            };
            let from =
                lienthong_edxml::OrganId::parse(&from).map_err(|e| anyhow::anyhow!("--as: {e}"))?;
            let package = lienthong_edxml::write::status_reply(
                &original.header,
                &Organization {
                    organ_name: None,
                    ..Organization::new(from, "")
                },
                code,
                description,
            );
            let status_doc = c
                .send(lienthong_edxml::write_status(&package), "status")
                .await?;
            println!("{status_doc}");
        }
        ClientCommand::Sent { conn, doc_id } => {
            print(&client(&conn)?.sent(doc_id.as_deref()).await?)?
        }
        ClientCommand::Trace { conn, doc_id } => print(&client(&conn)?.trace(&doc_id).await?)?,
        ClientCommand::Agencies { conn } => print(&client(&conn)?.agencies().await?)?,
        ClientCommand::Watch {
            conn,
            amqp_url,
            prefix,
            organs,
            amqp_ca_file,
            fetch,
            count,
        } => {
            watch(
                &conn,
                &amqp_url,
                &prefix,
                &organs,
                amqp_ca_file.as_deref(),
                fetch.as_deref(),
                count,
            )
            .await?
        }
    }
    Ok(())
}

/// The adapter's loop: one durable queue of this system's, bound for each of its agencies; each
/// notification printed (and its package saved) before it is acknowledged, so a crash loses none.
/// A failure to connect at first ends it (wrong URL or credentials); a connection lost later (the
/// broker restarting, the gateway away while fetching) is opened again, with back-off up to 30 s.
async fn watch(
    conn: &Connection,
    amqp_url: &str,
    prefix: &str,
    organs: &[String],
    ca_file: Option<&std::path::Path>,
    fetch: Option<&std::path::Path>,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let rest = match fetch {
        Some(_) => Some(client(conn)?),
        None => None,
    };
    let session = Session {
        conn,
        amqp_url,
        prefix,
        organs,
        ca_file,
        fetch: fetch.zip(rest.as_ref()),
        count,
    };
    let mut seen = 0u64;
    let mut connected_once = false;
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        match session.run(&mut seen, &mut connected_once).await {
            Ok(()) => return Ok(()),
            Err(e) if !connected_once => return Err(e),
            Err(e) => {
                eprintln!("{e:#}; connecting again in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

struct Session<'a> {
    conn: &'a Connection,
    amqp_url: &'a str,
    prefix: &'a str,
    organs: &'a [String],
    ca_file: Option<&'a std::path::Path>,
    fetch: Option<(&'a std::path::Path, &'a Client)>,
    count: Option<u64>,
}

impl Session<'_> {
    /// One connection: until `count` notifications were handled (`Ok`), or it fails.
    async fn run(&self, seen: &mut u64, connected_once: &mut bool) -> anyhow::Result<()> {
        let tls = self
            .amqp_url
            .starts_with("amqps://")
            .then(|| lienthong_bus::TlsConfig {
                ca_file: self.ca_file.map(Into::into),
                cert_file: self.conn.cert_file.clone(),
                key_file: self.conn.key_file.clone(),
            });
        let name = format!("adapter {}", self.conn.system_id);
        let amqp = lienthong_bus::open_connection(self.amqp_url, &name, tls.as_ref())
            .await
            .context("connecting to the broker")?;
        let result = self.consume(&amqp, seen, connected_once).await;
        // Whatever happened: what was not acknowledged goes back to the queue at once.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            amqp.close(200, "done".into()),
        )
        .await;
        result
    }

    async fn consume(
        &self,
        amqp: &lapin::Connection,
        seen: &mut u64,
        connected_once: &mut bool,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        use lapin::options::{
            BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
            QueueDeclareOptions,
        };
        use lapin::types::FieldTable;

        let channel = amqp.create_channel().await?;
        let queue = lienthong_bus::adapters::queue_name(self.prefix, &self.conn.system_id);
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("declaring the queue {queue}"))?;
        for organ in self.organs {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    format!("{}.inbox", self.prefix).into(),
                    organ.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .with_context(|| format!("binding {queue} to {}.inbox for {organ}", self.prefix))?;
        }
        channel.basic_qos(16, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("adapter-{}", self.conn.system_id).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        *connected_once = true;
        eprintln!("listening on {queue} for {}", self.organs.join(", "));
        while self.count.is_none_or(|n| *seen < n) {
            let Some(delivery) = consumer.next().await else {
                anyhow::bail!("the broker closed the consumer");
            };
            let delivery = delivery.context("the broker closed the connection")?;
            match serde_json::from_slice::<lienthong_bus::messages::InboxNotice>(&delivery.data) {
                Ok(notice) => {
                    if let Some((dir, rest)) = self.fetch {
                        let path = dir.join(format!("{}.pkg", notice.doc_id));
                        // Not fetched: not acknowledged; it comes again on the next connection.
                        rest.fetch_file(&notice.doc_id, true, &path)
                            .await
                            .with_context(|| format!("fetching {}", notice.doc_id))?;
                    }
                    println!("{}", serde_json::to_string(&notice)?);
                }
                // A hint only (the inbox is the record): dropped, said on stderr.
                Err(e) => eprintln!("a notification that is not one ({e}): dropped"),
            }
            delivery.ack(BasicAckOptions::default()).await?;
            *seen += 1;
        }
        Ok(())
    }
}
