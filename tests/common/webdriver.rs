//! A small W3C WebDriver client (just what the browser tests use) over reqwest, plus the
//! chromedriver process. Leaner than a WebDriver crate: no extra dependencies.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

impl Driver {
    /// Start chromedriver and a headless Chromium with a fresh profile in `profile_dir`.
    pub async fn start(profile_dir: &Path, log: &Path) -> Driver {
        let driver_bin = std::env::var("OUTPOST_CHROMEDRIVER").ok().or_else(|| which(&["chromedriver"])).expect(
            "chromedriver not found: run scripts/browser.sh (apt-get install chromium chromium-driver)",
        );
        let chrome = std::env::var("OUTPOST_CHROMIUM").ok().or_else(|| which(&["chromium", "chromium-browser"])).expect(
            "chromium not found: run scripts/browser.sh (apt-get install chromium chromium-driver)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1600".into(),
            format!("--user-data-dir={}", profile_dir.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": chrome, "args": args}}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Driver {
            child,
            base,
            session,
            http,
        }
    }

    async fn cmd(&self, post: bool, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let rb = if post {
            self.http.post(url).json(&body)
        } else {
            self.http.get(url)
        };
        let v: Value = rb.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(true, "/url", json!({ "url": url })).await;
    }

    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                true,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Wait for an element to appear.
    pub async fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "element {css} did not appear; page:\n{}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        self.cmd(true, &format!("/element/{e}/clear"), json!({}))
            .await;
        self.cmd(
            true,
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait(css).await;
        self.cmd(true, &format!("/element/{e}/click"), json!({}))
            .await;
    }

    /// Click a button that submits a form, and wait until the browser shows the page the
    /// submission led to. A plain `click` may return while the old page is still displayed, and
    /// an element with the same id on the old page (a flash code, say) would then be read.
    pub async fn submit(&self, css: &str) {
        let mark = json!({"script": "window.__outpost_old_page = true;", "args": []});
        self.cmd(true, "/execute/sync", mark).await;
        self.click(css).await;
        let probe = json!({"script": "return window.__outpost_old_page === true && document.readyState === 'complete';", "args": []});
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let still_old = self.cmd(true, "/execute/sync", probe.clone()).await;
            // A navigation in progress can answer with an error object: treat as not yet done.
            if still_old == Value::Bool(false) {
                let ready =
                    json!({"script": "return document.readyState === 'complete';", "args": []});
                if self.cmd(true, "/execute/sync", ready).await == Value::Bool(true) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "submitting {css} never led to a new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Is the checkbox (or option) selected?
    pub async fn selected(&self, css: &str) -> bool {
        let e = self.wait(css).await;
        self.cmd(false, &format!("/element/{e}/selected"), json!({}))
            .await
            .as_bool()
            .unwrap_or(false)
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.wait(css).await;
        self.cmd(false, &format!("/element/{e}/text"), json!({}))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Wait until the element's text satisfies `pred`.
    pub async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.find(css).await.is_some() {
                let t = self.text(css).await;
                if pred(&t) {
                    return t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never matched; page:\n{}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(e) => self
                .cmd(false, &format!("/element/{e}/text"), json!({}))
                .await
                .as_str()
                .unwrap_or("")
                .to_string(),
            None => String::new(),
        }
    }

    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd(false, "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}
