//! The Kafka installation (jars, log4j configs, compiled Java scenario client) and a runner for the
//! Java scenario client `tests/clients/java/Scenario.java`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::conn_guard;

/// What `tests/support/kafka-install.sh` put into the cache.
#[derive(Debug)]
pub struct Install {
    /// `…/kafka-<version>/libs`: every jar.
    pub libs: PathBuf,
    /// `…/kafka-<version>`.
    pub home: PathBuf,
}

impl Install {
    /// Runs the install script once per process (it is idempotent and cached across runs) and
    /// returns where it installed. Panics with the script's output if it fails.
    pub fn get() -> &'static Install {
        static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
        INSTALL
            .get_or_init(|| {
                let script = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/support/kafka-install.sh"
                );
                let out = Command::new("bash")
                    .arg(script)
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| format!("cannot run {script}: {e}"))?;
                if !out.status.success() {
                    return Err(format!("{script} failed ({})", out.status));
                }
                let stdout = String::from_utf8_lossy(&out.stdout);
                let libs = PathBuf::from(
                    stdout
                        .lines()
                        .last()
                        .ok_or_else(|| format!("{script} printed nothing"))?
                        .trim(),
                );
                let home = libs
                    .parent()
                    .ok_or_else(|| format!("bad libs dir {}", libs.display()))?
                    .to_path_buf();
                Ok(Install { libs, home })
            })
            .as_ref()
            .unwrap_or_else(|e| panic!("Kafka install failed: {e}"))
    }

    /// `libs/*`, the broker's and tools' classpath.
    pub fn libs_classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }

    /// A `java` command for a Kafka process (broker, storage tool) or client.
    pub fn java(&self) -> Command {
        let java = std::env::var_os("JAVA_HOME")
            .map(|h| PathBuf::from(h).join("bin/java"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("java"));
        Command::new(java)
    }

    /// `java … Scenario`: the scenario client, quiet logging, small heap, fast start-up.
    pub fn scenario_command(&self) -> Command {
        let mut cmd = self.java();
        cmd.args(["-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.home.join("config/log4j2-client.properties").display()
            ))
            .arg("-cp")
            .arg(format!(
                "{}:{}",
                self.home.join("scenario").display(),
                self.libs_classpath()
            ))
            .arg("Scenario");
        cmd
    }
}

/// One run of the Java scenario client.
#[derive(Debug, Clone)]
pub struct JavaScenario {
    name: String,
    args: Vec<(String, String)>,
    timeout: Duration,
    harness_probe: bool,
}

/// How a scenario run ended.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: String,
    /// Exit status; `None` when the harness killed it (timeout).
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
    pub pid: u32,
    pub elapsed: Duration,
}

impl JavaScenario {
    /// `name` is the scenario (`produce-consume`, ...); `bootstrap` what the client connects to.
    pub fn new(name: &str, bootstrap: &str) -> Self {
        JavaScenario {
            name: name.to_string(),
            args: vec![("bootstrap".to_string(), bootstrap.to_string())],
            timeout: Duration::from_secs(180),
            harness_probe: false,
        }
    }

    /// Adds `--key value`.
    pub fn arg(mut self, key: &str, value: impl ToString) -> Self {
        self.args.push((key.to_string(), value.to_string()));
        self
    }

    /// The scenario's own deadline (passed as `--timeout-ms`); the harness kills it 30 s later.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Marks the run as the harness's own probe of the brokers (readiness), which connects to the
    /// brokers' client ports directly by design: [`conn_guard`] leaves its connections out.
    pub fn harness_probe(mut self) -> Self {
        self.harness_probe = true;
        self
    }

    /// Runs to completion.
    pub fn run(&self) -> Outcome {
        self.run_interactive(|_| None)
    }

    /// Runs to completion; `on_line` sees every stdout line as it comes and may answer with a line
    /// for the client's stdin (the `leader-change` handshake).
    pub fn run_interactive(&self, on_line: impl FnMut(&str) -> Option<String>) -> Outcome {
        let install = Install::get();
        let mut cmd = install.scenario_command();
        cmd.arg(&self.name);
        for (k, v) in &self.args {
            cmd.arg(format!("--{k}")).arg(v);
        }
        cmd.arg("--timeout-ms")
            .arg(self.timeout.as_millis().to_string());
        run_client(
            cmd,
            &format!("Java scenario {}", self.name),
            self.name.clone(),
            self.timeout,
            self.harness_probe,
            on_line,
        )
    }
}

/// Runs a scenario client `cmd` (its stdin, stdout and stderr are piped here) to completion, or
/// kills it 30 s past `timeout`, the scenario's own deadline. `on_line` sees every stdout line as it
/// comes and may answer with a line for the client's stdin (the `leader-change` handshake).
/// `label` names the run in panics (`Java scenario produce-consume`), `scenario` in the
/// [`Outcome`]; `harness_probe` leaves the client's connections out of [`conn_guard`]'s report.
pub fn run_client(
    mut cmd: Command,
    label: &str,
    scenario: String,
    timeout: Duration,
    harness_probe: bool,
    mut on_line: impl FnMut(&str) -> Option<String>,
) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
    let pid = child.id();
    if harness_probe {
        conn_guard::exempt_pid(pid);
    }
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let out_thread = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_thread = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let hard_deadline = started + timeout + Duration::from_secs(30);
    let mut lines = Vec::new();
    let mut killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(answer) = on_line(&line) {
                    if let Some(w) = stdin.as_mut() {
                        // The client may have failed already; its outcome says why.
                        let _ = writeln!(w, "{answer}").and_then(|_| w.flush());
                    }
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > hard_deadline && !killed {
                    let _ = child.kill();
                    killed = true;
                }
            }
        }
    }
    drop(stdin);
    // stdout closed; the process may still be exiting (or a child of it holds the pipe).
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                if Instant::now() > hard_deadline && !killed {
                    let _ = child.kill();
                    killed = true;
                }
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("wait for {label}: {e}"),
        }
    };
    let _ = out_thread.join();
    let stderr = err_thread.join().unwrap_or_default();
    Outcome {
        scenario,
        code: if killed { None } else { status.code() },
        stdout: lines,
        stderr,
        pid,
        elapsed: started.elapsed(),
    }
}

impl Outcome {
    /// The scenario's JSON result line (the last `{"scenario":…}` line), if it printed one.
    pub fn result_line(&self) -> Option<&str> {
        self.stdout
            .iter()
            .rev()
            .find(|l| l.starts_with("{\"scenario\""))
            .map(String::as_str)
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
            && self.result_line().and_then(|l| super::json_field(l, "ok")) == Some("true")
    }

    /// Panics with the client's stdout and the tail of its stderr unless the scenario succeeded;
    /// returns the result line.
    pub fn assert_ok(&self) -> &str {
        if !self.ok() {
            let err_tail: Vec<&str> = self.stderr.lines().collect();
            let err_tail = err_tail[err_tail.len().saturating_sub(60)..].join("\n");
            panic!(
                "Java scenario {} failed (exit {:?}, {:.1?}):\nstdout:\n{}\nstderr (tail):\n{}",
                self.scenario,
                self.code,
                self.elapsed,
                self.stdout.join("\n"),
                err_tail
            );
        }
        let line = self.result_line().expect("ok implies a result line");
        eprintln!("[it] {line}");
        line
    }
}
