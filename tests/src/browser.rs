//! The web console as people use it: the console served in this process against an in-process
//! bus, and headless Chromium driven over WebDriver (chromedriver, from the Debian package
//! `chromium-driver`, which `deploy/local/ensure-services --chromium` installs).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::sync::watch;

use crate::{Env, OFFICER_TOKEN, OPERATOR_TOKEN, Running, free_port};

/// Console users of the tests, all with this password.
pub const PASSWORD: &str = "mật-khẩu-thử-nghiệm-1";

/// The console, serving in this process.
pub struct Console {
    pub url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Console {
    /// A console for the gateway at `gateway_url`, with users `op` (operator), `sec` (security
    /// officer) and `clerk` (viewer of `viewer_agencies`).
    pub async fn start(env: &Env, gateway_url: &str, viewer_agencies: &[&str]) -> Console {
        Self::serve(Self::config(env, viewer_agencies), gateway_url).await
    }

    /// The configuration [`Console::start`] serves, to change before [`Console::serve`].
    pub fn config(env: &Env, viewer_agencies: &[&str]) -> lienthong_console::ConsoleConfig {
        let hash = lienthong_console::hash_password(PASSWORD, 1_000).expect("hash");
        let user = |name: &str, role, agencies: &[&str]| lienthong_console::User {
            name: name.into(),
            role,
            password: hash.clone(),
            agencies: agencies.iter().map(|a| (*a).to_owned()).collect(),
        };
        lienthong_console::ConsoleConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            operator_token: Some(OPERATOR_TOKEN.into()),
            security_token: Some(OFFICER_TOKEN.into()),
            sample_secs: 1,
            users: vec![
                user("op", lienthong_console::Role::Operator, &[]),
                user("sec", lienthong_console::Role::Security, &[]),
                user("clerk", lienthong_console::Role::Viewer, viewer_agencies),
            ],
            trust: Some(lienthong_console::TrustFiles {
                trust_dir: env.verifier.trust_dir.clone(),
                intermediates_dir: env.verifier.intermediates_dir.clone(),
                // The verifier's CRLs, and the test root's (due soon: a warning to show).
                crl_files: env
                    .verifier
                    .crl_files
                    .iter()
                    .cloned()
                    .chain([crate::vectors_dir().join("keys/root.crl.pem")])
                    .collect(),
                crl_cache_dir: None,
            }),
            ..lienthong_console::ConsoleConfig::default()
        }
    }

    /// Serves `config` in this process (over HTTPS with `config.tls`).
    pub async fn serve(config: lienthong_console::ConsoleConfig, gateway_url: &str) -> Console {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let (listener, addr) = lienthong_console::bind(&config).await.expect("bind");
        let (stop, rx) = watch::channel(false);
        let gateway_url = gateway_url.to_owned();
        let task = tokio::spawn(async move {
            lienthong_console::serve(listener, config, gateway_url, rx)
                .await
                .expect("console");
        });
        Console {
            url: format!("{scheme}://{addr}"),
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Headless Chromium under chromedriver; both end with the test.
pub struct Browser {
    pub client: Client,
    _driver: Running,
    shots: PathBuf,
}

/// Where screenshots are kept: `target/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

impl Browser {
    pub async fn start() -> Browser {
        // fantoccini's TLS stack would otherwise find two providers and pick neither.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "chromedriver is required (Debian package chromium-driver; deploy/local/ensure-services --chromium installs it)",
            );
        let driver = Running(driver);
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,1000", "--lang=vi"],
                // A browser set to Vietnamese, as most of the console's users have.
                "prefs": { "intl.accept_languages": "vi-VN,vi" },
            }),
        );
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::rustls()
                .expect("rustls")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            client: client.expect("chromedriver started a browser session"),
            _driver: driver,
            shots,
        }
    }

    /// Keeps a screenshot of the page as `name.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// `act` on the element `css`, waiting for it to appear; an element of a page being left
    /// (stale) is looked for again on the next page.
    async fn on<T>(
        &self,
        css: &str,
        act: impl AsyncFn(fantoccini::elements::Element) -> Result<T, fantoccini::error::CmdError>,
    ) -> T {
        self.on_within(css, Duration::from_secs(10), act).await
    }

    /// [`Browser::on`], waiting at most `wait` for the element each time it is looked for. If it
    /// never appears, the panic names the page that was showing and what it said.
    async fn on_within<T>(
        &self,
        css: &str,
        wait: Duration,
        act: impl AsyncFn(fantoccini::elements::Element) -> Result<T, fantoccini::error::CmdError>,
    ) -> T {
        let mut last = String::new();
        for _ in 0..50 {
            let found = match self
                .client
                .wait()
                .at_most(wait)
                .for_element(Locator::Css(css))
                .await
            {
                Ok(found) => found,
                Err(e) => panic!("{css}: {e}; {}", self.showing().await),
            };
            match act(found).await {
                Ok(t) => return t,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css}: {last}");
    }

    /// The text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.on(css, async |e| e.text().await).await
    }

    /// What an action left on the page: `Ok` with the text of `#done`, `Err` with that of
    /// `#error`. It waits longer than the console waits for the gateway (30 s), so an action
    /// that is slow ends in one or the other rather than in a timeout here.
    pub async fn notice(&self) -> Result<String, String> {
        let (id, text) = self
            .on_within("#done, #error", Duration::from_secs(45), async |e| {
                Ok((e.attr("id").await?, e.text().await?))
            })
            .await;
        match id.as_deref() {
            Some("done") => Ok(text),
            _ => Err(text),
        }
    }

    /// The page showing and the start of its text, for a failure's message.
    async fn showing(&self) -> String {
        let url = match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => format!("(no URL: {e})"),
        };
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let text: String = text.chars().take(600).collect();
        format!("the page showing was {url}: {text:?}")
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.on(css, async |e| e.click().await).await
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Signs in at `console` as `user`.
    pub async fn sign_in(&self, console: &str, user: &str) {
        self.goto(&format!("{console}/login")).await;
        self.fill("#name", user).await;
        self.fill("#password", PASSWORD).await;
        self.click("#signin").await;
        self.text("#user").await;
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    /// The path once it is `want`, or whatever it is after 10 s: a click that submits a form
    /// may return before the page it leads to is loaded.
    pub async fn path_when(&self, want: &str) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if path == want || std::time::Instant::now() > until {
                return path;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
