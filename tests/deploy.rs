//! The deployment files: deploy/kubernetes/ (manifests, PodMonitor, Grafana dashboard) and
//! deploy/container/ (Dockerfile). Checked offline:
//!
//! - every manifest, its placeholders filled as `envsubst` would, against the Kubernetes API's
//!   JSON schemas (`kubernetes-validate --strict`, oldest and newest supported version);
//! - the facts that tie the files together and that no schema sees: the shard count, the
//!   metrics port, the password's source, the `$(VAR)`s Kubernetes expands, the volume,
//!   ConfigMap and Secret names, the metric names the dashboard queries;
//! - the profile in the ConfigMap, by `ftpswarm plan --what-if`;
//! - the Dockerfile, by hadolint and by what the image must be (non-root, ftpswarm as
//!   ENTRYPOINT, a build context holding everything the crate compiles in).
//!
//! YAML is read through python3 + PyYAML (no YAML crate is a dependency). The tools come from
//! `.ci/install-deploy-tools.sh`; without them a test prints `SKIPPED:` and passes, except in
//! CI (env `CI` non-empty), where it fails.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const INSTALL: &str = ".ci/install-deploy-tools.sh";
/// What `envsubst '${START_AT} ${RUN_ID}'` fills in: the only placeholders allowed.
const PLACEHOLDERS: [(&str, &str); 2] = [
    ("${START_AT}", "2026-01-02T03:04:05Z"), // past: a shard run by the tests starts at once
    ("${RUN_ID}", "20261206-230000"),
];
/// The oldest Kubernetes the manifests are for (the Job's backoffLimitPerIndex is on by
/// default from 1.29) and the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// Every series name `ftpswarm run --metrics-addr` serves, read off the exporter itself (not
/// a copy that could drift from it): histogram names with their `_bucket/_sum/_count`.
fn exported_names() -> BTreeSet<String> {
    let live = std::sync::Arc::new(ftpswarm::observe::LiveCounters::default());
    let text = ftpswarm::observe::metrics::Metrics::new(live, Vec::new()).render();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Files and tools
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every .yaml file in deploy/kubernetes/, by file name.
fn manifest_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(kubernetes_dir())
        .expect("deploy/kubernetes/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no manifests in deploy/kubernetes/");
    names
}

/// The manifest's text as `envsubst '${START_AT} ${RUN_ID}'` leaves it.
fn substituted(name: &str) -> String {
    let mut text = read(&kubernetes_dir().join(name));
    for (placeholder, value) in PLACEHOLDERS {
        text = text.replace(placeholder, value);
    }
    text
}

fn python() -> String {
    std::env::var("FTPSWARM_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The house rule for a missing tool: in CI a failure, elsewhere a loud skip.
fn tool_ready(what: &str, probe: &mut Command) -> bool {
    let problem = match run(probe) {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("{probe:?} failed: {}", text_of(&out).trim()),
        Err(e) => e,
    };
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI is set, so {what} is required, but {problem}\nrun `bash {INSTALL}` (as root) first");
    }
    // Straight to stderr, past the test harness's capture of eprintln!, so that the skip
    // shows in a plain `cargo test`.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what} is not available ({problem}); `bash {INSTALL}` installs it (with CI set this is a failure)"
    );
    false
}

fn yaml_ready() -> bool {
    tool_ready(
        "PyYAML (python3 -c 'import yaml')",
        Command::new(python()).args(["-c", "import yaml"]),
    )
}

/// Every document of a manifest (placeholders filled), as JSON, read by PyYAML.
fn documents(name: &str) -> Vec<Value> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";
    let mut child = Command::new(python())
        .args(["-c", TO_JSON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(substituted(name).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{name} is not valid YAML:\n{}", text_of(&out));
    match serde_json::from_slice(&out.stdout).expect("python printed JSON") {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// The one document of a manifest that holds one resource.
fn resource(name: &str) -> Value {
    let mut docs = documents(name);
    assert_eq!(docs.len(), 1, "{name}: expected one resource");
    docs.remove(0)
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("missing {pointer} in {v:#}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer)
        .as_str()
        .unwrap_or_else(|| panic!("{pointer} is not a string in {v:#}"))
}

/// Every container (init containers first) of a Job's or Pod's pod spec; none for other kinds.
fn containers(resource: &Value) -> Vec<&Value> {
    let Some(spec) = resource
        .pointer("/spec/template/spec")
        .or_else(|| resource.pointer("/spec"))
    else {
        return Vec::new();
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn args(container: &Value) -> Vec<&str> {
    ["command", "args"]
        .iter()
        .filter_map(|k| container.get(*k).and_then(Value::as_array))
        .flatten()
        .map(|a| a.as_str().expect("args are strings (quote numbers)"))
        .collect()
}

/// The value of `--flag=value` or `--flag value` in an argument list.
fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(&prefix) {
            Some(v)
        } else if *a == name {
            args.get(i + 1).copied()
        } else {
            None
        }
    })
}

fn shards_job() -> Value {
    resource("shards-job.yaml")
}

fn shard_container(job: &Value) -> &Value {
    let all = containers(job);
    assert_eq!(all.len(), 1, "the shard pod runs one container");
    all[0]
}

fn env_var<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container.get("env")?.as_array()?.iter().find(|e| e["name"] == name)
}

// ---------------------------------------------------------------------------------------
// Kubernetes schemas
// ---------------------------------------------------------------------------------------

#[test]
fn manifests_pass_strict_kubernetes_schema_validation() {
    if !tool_ready(
        "kubernetes-validate",
        Command::new(python()).args(["-m", "kubernetes_validate", "--version"]),
    ) {
        return;
    }
    // The PodMonitor is a CRD the validator has no schema for: it would only warn.
    // podmonitor_selects_the_shard_pods_metrics_port checks what it can of it.
    let names: Vec<String> = manifest_names()
        .into_iter()
        .filter(|n| n != "podmonitor.yaml")
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python());
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    for version in KUBERNETES_VERSIONS {
        cmd.args(["-k", version]);
    }
    for name in &names {
        let path = tmp.path().join(name);
        std::fs::write(&path, substituted(name)).unwrap();
        cmd.arg(&path);
    }
    let out = run(&mut cmd).unwrap();
    let report = text_of(&out);
    assert!(out.status.success(), "kubernetes-validate --strict failed:\n{report}");
    // A kind or apiVersion it has no schema for is only a WARN with exit 0: a typo in
    // `apiVersion: batch/v1` would pass unseen. Every resource must have been checked.
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "kubernetes-validate:\n{report}"
    );
    for name in &names {
        let expected = documents(name).len() * KUBERNETES_VERSIONS.len();
        let passed = report
            .lines()
            .filter(|l| l.starts_with("INFO") && l.contains(&format!("/{name} passed for resource")))
            .count();
        assert_eq!(
            passed, expected,
            "{name}: {passed} of {expected} resource checks passed:\n{report}"
        );
    }
}

#[test]
fn placeholders_are_only_start_at_and_run_id() {
    // The README applies the manifests through `envsubst '${START_AT} ${RUN_ID}'`: any
    // other ${...} would reach Kubernetes as it is.
    for name in manifest_names() {
        let text = substituted(&name);
        let line = text.lines().position(|l| l.contains("${"));
        assert!(
            line.is_none(),
            "{name}:{}: a placeholder envsubst does not fill",
            line.unwrap_or(0) + 1
        );
    }
    let raw = read(&kubernetes_dir().join("shards-job.yaml"));
    assert!(
        raw.contains("--start-at=${START_AT}"),
        "the shards start at ${{START_AT}}"
    );
}

// ---------------------------------------------------------------------------------------
// Cross-checks between the files
// ---------------------------------------------------------------------------------------

#[test]
fn shard_count_matches_everywhere() {
    if !yaml_ready() {
        return;
    }
    let job = shards_job();
    assert_eq!(str_at(&job, "/spec/completionMode"), "Indexed");
    let completions = at(&job, "/spec/completions").as_u64().expect("completions is a number");
    let parallelism = at(&job, "/spec/parallelism").as_u64().expect("parallelism is a number");
    assert_eq!(
        completions, parallelism,
        "every shard must run at once: completions == parallelism"
    );
    assert_eq!(str_at(&job, "/spec/template/spec/restartPolicy"), "Never");
    // A retried shard would run outside the others' window; a whole-Job backoffLimit of 0
    // would kill the other shards when one fails.
    assert_eq!(
        at(&job, "/spec/backoffLimitPerIndex").as_u64(),
        Some(0),
        "shards are never retried"
    );

    let run_args = args(shard_container(&job));
    assert_eq!(run_args.first(), Some(&"run"));
    let shard = flag(&run_args, "--shard").expect("--shard in the shard pod's args");
    let (index, n) = shard.split_once('/').expect("--shard I/N");
    assert_eq!(index, "$(JOB_COMPLETION_INDEX)");
    assert_eq!(
        n.parse::<u64>().ok(),
        Some(completions),
        "--shard {shard} but completions: {completions}"
    );
    let out = flag(&run_args, "--out").expect("--out");
    assert_eq!(
        out,
        format!("/data/{}/shard-$(JOB_COMPLETION_INDEX)", PLACEHOLDERS[1].1)
    );
    assert!(
        run_args.contains(&"--no-report"),
        "shards leave the report to the merge"
    );

    // The merge: exactly shard-0 .. shard-(N-1). `ftpswarm merge` plans and draws the report
    // itself (unless --no-report), so it is the whole merge Job.
    let merge = resource("merge-job.yaml");
    let merge_containers = containers(&merge);
    assert_eq!(
        merge_containers.len(),
        1,
        "one container: merge plans and reports itself"
    );
    let merge_args = args(merge_containers[0]);
    assert_eq!(merge_args.first(), Some(&"merge"));
    assert!(
        !merge_args.contains(&"--no-report"),
        "the merged run is the one to draw the report of"
    );
    let merged = flag(&merge_args, "--out").expect("merge --out");
    assert_eq!(merged, format!("/data/{}/merged", PLACEHOLDERS[1].1));
    let inputs: Vec<&str> = merge_args[1..]
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-') && *a != merged)
        .collect();
    let expected: Vec<String> = (0..completions)
        .map(|i| format!("/data/{}/shard-{i}", PLACEHOLDERS[1].1))
        .collect();
    assert_eq!(
        inputs, expected,
        "the merge must list every shard's run directory, and only those"
    );
}

#[test]
fn metrics_port_matches_everywhere() {
    if !yaml_ready() {
        return;
    }
    let job = shards_job();
    let container = shard_container(&job);
    let annotations = at(&job, "/spec/template/metadata/annotations");
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let annotated: u64 = annotations["prometheus.io/port"]
        .as_str()
        .expect("prometheus.io/port is a quoted string")
        .parse()
        .expect("prometheus.io/port is a number");

    let ports = at(container, "/ports").as_array().unwrap();
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a containerPort named metrics");
    let container_port = metrics["containerPort"].as_u64().unwrap();

    let run_args = args(container);
    let addr = flag(&run_args, "--metrics-addr").expect("--metrics-addr");
    let (host, port) = addr.rsplit_once(':').expect("--metrics-addr HOST:PORT");
    assert_eq!(
        host, "0.0.0.0",
        "the endpoint must listen on the pod's IP, not loopback"
    );
    let listened: u64 = port.parse().unwrap();

    assert_eq!(
        (container_port, annotated),
        (listened, listened),
        "containerPort, prometheus.io/port and --metrics-addr must agree"
    );
}

#[test]
fn podmonitor_selects_the_shard_pods_metrics_port() {
    if !yaml_ready() {
        return;
    }
    let monitor = resource("podmonitor.yaml");
    assert_eq!(str_at(&monitor, "/apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(str_at(&monitor, "/kind"), "PodMonitor");
    assert!(!str_at(&monitor, "/metadata/name").is_empty());

    let job = shards_job();
    let pod_labels = at(&job, "/spec/template/metadata/labels").as_object().unwrap();
    let selector = at(&monitor, "/spec/selector/matchLabels")
        .as_object()
        .expect("selector.matchLabels");
    assert!(!selector.is_empty(), "an empty selector would scrape every pod");
    for (k, v) in selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "selector {k}={v} does not match the shard pods"
        );
    }
    // It must not select the merge pods (they serve no metrics).
    let merge_labels = at(&resource("merge-job.yaml"), "/spec/template/metadata/labels").clone();
    assert!(
        selector.iter().any(|(k, v)| merge_labels.get(k) != Some(v)),
        "the selector also matches the merge pods"
    );

    let endpoints = at(&monitor, "/spec/podMetricsEndpoints").as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    let port_names: Vec<&Value> = at(shard_container(&job), "/ports")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert!(
        port_names.contains(&&endpoint["port"]),
        "port {} is not a named port of the shard container",
        endpoint["port"]
    );
    assert_eq!(
        endpoint["path"],
        at(&job, "/spec/template/metadata/annotations/prometheus.io~1path").clone()
    );

    // Its relabeling turns a real pod label into the dashboard's run_id label.
    for relabel in endpoint["relabelings"].as_array().into_iter().flatten() {
        for source in relabel["sourceLabels"].as_array().unwrap() {
            let label = source
                .as_str()
                .unwrap()
                .strip_prefix("__meta_kubernetes_pod_label_")
                .expect("a pod label");
            let sanitized: Vec<String> = pod_labels.keys().map(|k| k.replace(['-', '.', '/'], "_")).collect();
            assert!(sanitized.iter().any(|k| k == label), "no pod label becomes {source}");
        }
    }
}

#[test]
fn password_comes_from_the_secret() {
    if !yaml_ready() {
        return;
    }
    let secret = resource("secret.example.yaml");
    let secret_name = str_at(&secret, "/metadata/name");
    let job = shards_job();
    let container = shard_container(&job);
    let password = env_var(container, "FTPSWARM_PASSWORD").expect("env FTPSWARM_PASSWORD");
    assert!(
        password.get("value").is_none(),
        "FTPSWARM_PASSWORD must not be a literal"
    );
    let key_ref = at(password, "/valueFrom/secretKeyRef");
    assert_eq!(
        key_ref["name"], secret_name,
        "FTPSWARM_PASSWORD's Secret is not secret.example.yaml's"
    );
    let key = key_ref["key"].as_str().unwrap();
    let example = secret
        .pointer(&format!("/stringData/{key}"))
        .or_else(|| secret.pointer(&format!("/data/{key}")));
    let example = example.unwrap_or_else(|| panic!("secret.example.yaml has no key {key}"));
    assert!(
        example.as_str().unwrap().contains("EXAMPLE"),
        "the example Secret's value must look like an example"
    );

    // No literal secret anywhere, and none in the target URL.
    for name in manifest_names() {
        for doc in documents(&name) {
            for c in containers(&doc) {
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    let var = e["name"].as_str().unwrap().to_uppercase();
                    let sensitive = ["PASSWORD", "PASSWD", "SECRET", "TOKEN"]
                        .iter()
                        .any(|s| var.contains(s));
                    assert!(
                        !(sensitive && e.get("value").is_some()),
                        "{name}: env {var} is a literal"
                    );
                }
            }
        }
    }
    let target = flag(&args(container), "--target").expect("--target");
    let url = target
        .strip_prefix("ftp://")
        .or_else(|| target.strip_prefix("ftps://"))
        .expect("an ftp:// URL");
    let userinfo = url.split_once('@').map(|(u, _)| u).unwrap_or("");
    assert!(!userinfo.contains(':'), "--target {target} carries a password");
    assert!(
        url.contains(".example."),
        "--target must stay a placeholder host: {target}"
    );
}

#[test]
fn arg_variables_are_declared_in_the_container_env() {
    // Kubernetes expands $(VAR) in command/args only for variables in the container's env
    // list; anything else stays the literal text "$(VAR)".
    if !yaml_ready() {
        return;
    }
    for name in manifest_names() {
        for doc in documents(&name) {
            for c in containers(&doc) {
                for arg in args(c) {
                    let mut rest = arg;
                    while let Some(start) = rest.find("$(") {
                        let end = rest[start..].find(')').expect("a closed $(...)") + start;
                        let var = &rest[start + 2..end];
                        assert!(
                            env_var(c, var).is_some(),
                            "{name}: {arg} uses $({var}), not in the container's env"
                        );
                        rest = &rest[end..];
                    }
                }
            }
        }
    }
    let job = shards_job();
    let index = env_var(shard_container(&job), "JOB_COMPLETION_INDEX").expect("JOB_COMPLETION_INDEX in env");
    assert_eq!(
        str_at(index, "/valueFrom/fieldRef/fieldPath"),
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
}

#[test]
fn volumes_configmap_and_claim_match() {
    if !yaml_ready() {
        return;
    }
    let pvc = resource("pvc.yaml");
    let claim = str_at(&pvc, "/metadata/name");
    assert_eq!(
        at(&pvc, "/spec/accessModes"),
        &serde_json::json!(["ReadWriteMany"]),
        "shards on several nodes share it"
    );
    let configmap = resource("profile-configmap.yaml");
    let namespace = str_at(&pvc, "/metadata/namespace").to_owned();

    for name in ["shards-job.yaml", "merge-job.yaml", "results-pod.yaml"] {
        let doc = resource(name);
        assert_eq!(str_at(&doc, "/metadata/namespace"), namespace, "{name}: namespace");
        let spec = doc.pointer("/spec/template/spec").unwrap_or_else(|| at(&doc, "/spec"));
        let volumes = spec["volumes"].as_array().unwrap();
        for c in containers(&doc) {
            let data = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == "/data");
            let data = data.unwrap_or_else(|| panic!("{name}: results volume not at /data"));
            let volume = volumes.iter().find(|v| v["name"] == data["name"]).unwrap();
            assert_eq!(
                volume["persistentVolumeClaim"]["claimName"], claim,
                "{name}: not the results claim"
            );
        }
    }

    // --profile names a key of the ConfigMap, where the ConfigMap is mounted.
    let job = shards_job();
    let container = shard_container(&job);
    let profile = flag(&args(container), "--profile")
        .or_else(|| flag(&args(container), "-p"))
        .expect("--profile");
    let (dir, key) = profile.rsplit_once('/').unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir);
    let mount = mount.unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volumes = at(&job, "/spec/template/spec/volumes").as_array().unwrap();
    let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(volume["configMap"]["name"], at(&configmap, "/metadata/name").clone());
    assert!(configmap["data"].get(key).is_some(), "the ConfigMap has no key {key}");
}

#[test]
fn configmap_profiles_are_valid() {
    if !yaml_ready() {
        return;
    }
    let configmap = resource("profile-configmap.yaml");
    let data = at(&configmap, "/data").as_object().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut profiles = 0;
    for (key, text) in data.iter().filter(|(k, _)| k.ends_with(".toml")) {
        profiles += 1;
        let text = text.as_str().unwrap();
        let parsed: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{key} is not TOML: {e}"));
        assert!(
            parsed.get("load").is_some_and(toml::Value::is_table),
            "{key} has no [load] table"
        );
        // ftpswarm's own reading of the profile, every field checked.
        let path = tmp.path().join(key);
        std::fs::write(&path, text).unwrap();
        let out = run(Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
            .args(["plan", "--what-if", "--hold", "40ms", "-p"])
            .arg(&path))
        .unwrap();
        assert!(
            out.status.success(),
            "ftpswarm plan --what-if -p {key} failed:\n{}",
            text_of(&out)
        );
    }
    assert!(profiles > 0, "no *.toml key in the ConfigMap");
}

/// Runs ftpswarm with `args`, killing it after a minute.
fn ftpswarm(args: &[String], password: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ftpswarm"))
        .args(args)
        .env("FTPSWARM_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ftpswarm starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("ftpswarm {args:?} still running after 60 s");
        }
    }
}

#[test]
fn ftpswarm_accepts_the_jobs_arguments() {
    // The pods' args, as Kubernetes expands them for shard 1, run against a closed port on
    // loopback: getting as far as the preflight's connect means every flag exists, every
    // value parses and the profile loads. Only the target, the paths and the metrics
    // address are changed for the machine the test runs on.
    if !yaml_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let configmap = resource("profile-configmap.yaml");
    let data_dir = tmp.path().join("data");
    let local = |arg: &str| -> String {
        let arg = arg.replace("$(JOB_COMPLETION_INDEX)", "1");
        let arg = arg.replace("=/data/", &format!("={}/", data_dir.display()));
        let arg = if arg.starts_with("/data/") {
            format!("{}{}", data_dir.display(), &arg[5..])
        } else {
            arg
        };
        if let Some(path) = arg.strip_prefix("--profile=/etc/ftpswarm/") {
            let file = tmp.path().join(path);
            std::fs::write(
                &file,
                configmap["data"][path].as_str().expect("the profile's ConfigMap key"),
            )
            .unwrap();
            return format!("--profile={}", file.display());
        }
        if let Some(url) = arg.strip_prefix("--target=") {
            let (scheme_user, _) = url.split_once('@').expect("ftp://user@host");
            return format!("--target={scheme_user}@127.0.0.1:{closed_port}/");
        }
        if arg.starts_with("--metrics-addr=") {
            return "--metrics-addr=127.0.0.1:0".to_owned();
        }
        arg
    };

    let job = shards_job();
    let shard_args: Vec<String> = args(shard_container(&job)).into_iter().map(local).collect();
    let out = ftpswarm(&shard_args, "EXAMPLE-ONLY");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("connect_refused"),
        "ftpswarm {shard_args:?} should have failed at the connect, not before it:\n{}",
        text_of(&out)
    );

    // The merge's flags (its shard directories do not exist here: that is the error).
    let merge = resource("merge-job.yaml");
    let merge_args: Vec<String> = containers(&merge).iter().flat_map(|c| args(c)).map(local).collect();
    let out = ftpswarm(&merge_args, "");
    let report = text_of(&out);
    for clap_error in ["unexpected argument", "invalid value", "required arguments", "Usage:"] {
        assert!(
            !report.contains(clap_error),
            "ftpswarm {merge_args:?} rejects its arguments:\n{report}"
        );
    }
    assert!(
        !out.status.success() && report.contains("shard-0"),
        "merge of missing shards:\n{report}"
    );
}

// ---------------------------------------------------------------------------------------
// Grafana dashboard
// ---------------------------------------------------------------------------------------

fn dashboard() -> Value {
    let path = kubernetes_dir().join("grafana-dashboard.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression: the panels' targets and the query variables.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut exprs: Vec<String> = panels(dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_owned())
        .collect();
    for var in at(dashboard, "/templating/list").as_array().unwrap() {
        if var["type"] == "query" {
            exprs.push(var["definition"].as_str().unwrap().to_owned());
            exprs.push(var["query"]["query"].as_str().unwrap_or_default().to_owned());
        }
    }
    exprs
}

fn uses_datasource_variable(ds: &Value) -> bool {
    matches!(ds["uid"].as_str(), Some("${datasource}" | "$datasource")) && ds["type"] == "prometheus"
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let dashboard = dashboard();
    let allowed = exported_names();
    assert!(allowed.contains("ftpswarm_phase_latency_seconds_bucket"), "{allowed:?}");
    let phases = ftpswarm::summary::PHASES;
    let classes: Vec<&str> = ftpswarm::event::FailureClass::ALL.iter().map(|c| c.as_str()).collect();

    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 10, "a dashboard with {} queries", exprs.len());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        // The regex ftpswarm_[a-z0-9_]+ by hand.
        for (start, _) in expr.match_indices("ftpswarm_") {
            let name: String = expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            assert!(
                allowed.contains(&name),
                "{name} is no metric ftpswarm exports, in: {expr}"
            );
            used.insert(name);
        }
        for (label, values) in [("phase", phases), ("class", &classes[..])] {
            for (start, _) in expr.match_indices(&format!("{label}=\"")) {
                let value = expr[start + label.len() + 2..].split('"').next().unwrap();
                assert!(
                    values.contains(&value),
                    "{label}=\"{value}\" is not one of ftpswarm's: {expr}"
                );
            }
        }
    }
    // The panels the swarm is watched by.
    for needed in [
        "ftpswarm_sessions_active",
        "ftpswarm_ports_held",
        "ftpswarm_failures_total",
        "ftpswarm_phase_latency_seconds_bucket",
    ] {
        assert!(used.contains(needed), "the dashboard never shows {needed}");
    }
    assert!(
        exprs.iter().any(|e| e.contains("sum by (shard)")),
        "no per-shard breakdown"
    );
    assert!(
        exprs.iter().any(|e| e.contains("sum by (class)")),
        "no failures by class"
    );
}

#[test]
fn dashboard_panels_use_the_datasource_variable() {
    let dashboard = dashboard();
    assert!(
        at(&dashboard, "/schemaVersion").as_u64().unwrap() >= 36,
        "schemaVersion >= 36"
    );
    let vars = at(&dashboard, "/templating/list").as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&Value::from("datasource"), &Value::from("prometheus"))
    );
    for var in vars.iter().filter(|v| v["type"] == "query") {
        assert!(
            uses_datasource_variable(&var["datasource"]),
            "variable {} has a fixed datasource",
            var["name"]
        );
    }
    // The run variable filters on the label the PodMonitor and the kubernetes-pods labelmap
    // give the shard pods' `run-id` label.
    assert!(vars.iter().any(|v| v["name"] == "run_id"), "a run_id variable");

    let all = panels(&dashboard);
    assert!(!all.is_empty());
    let mut ids = BTreeSet::new();
    for p in &all {
        let title = &p["title"];
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "panel id {} twice",
            p["id"]
        );
        assert!(
            uses_datasource_variable(&p["datasource"]),
            "panel {title}: datasource is not ${{datasource}}"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(tds) = t.get("datasource") {
                assert!(
                    uses_datasource_variable(tds),
                    "panel {title}: a target with a fixed datasource"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Container image
// ---------------------------------------------------------------------------------------

fn dockerfile() -> PathBuf {
    repo().join("deploy/container/Dockerfile")
}

#[test]
fn dockerfile_passes_hadolint() {
    if !tool_ready("hadolint", Command::new("hadolint").arg("--version")) {
        return;
    }
    let out = run(Command::new("hadolint").arg(dockerfile())).unwrap();
    assert!(
        out.status.success(),
        "hadolint {}:\n{}",
        dockerfile().display(),
        text_of(&out)
    );
}

#[test]
fn image_runs_ftpswarm_as_non_root() {
    let text = read(&dockerfile());
    // Instructions (upper-case first words); comments and continuation lines left out.
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(i, _)| i.chars().all(|c| c.is_ascii_uppercase()))
        .map(|(i, rest)| (i.to_owned(), rest.trim().to_owned()))
        .collect();
    let stages = instructions.iter().filter(|(i, _)| i == "FROM").count();
    assert!(
        stages >= 2,
        "a multi-stage build: compile, then a runtime image without the toolchain"
    );
    let last_from = instructions.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let runtime = &instructions[last_from..];
    let get = |name: &str| runtime.iter().rev().find(|(i, _)| i == name).map(|(_, v)| v.as_str());

    let base = get("FROM").unwrap();
    assert!(
        base.starts_with("scratch") || base.contains("distroless/static"),
        "a static runtime base: {base}"
    );
    let user = get("USER").expect("USER in the runtime stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER (runAsNonRoot needs it)");
    assert_ne!(uid, 0, "the image runs as root");
    let entrypoint = get("ENTRYPOINT").expect("ENTRYPOINT");
    assert!(
        entrypoint.starts_with('[') && entrypoint.contains("ftpswarm\""),
        "ENTRYPOINT [\".../ftpswarm\"]: {entrypoint}"
    );

    // The manifests rely on it: runAsUser is the image's user, the port is EXPOSEd.
    if yaml_ready() {
        let job = shards_job();
        assert_eq!(
            at(&job, "/spec/template/spec/securityContext/runAsUser").as_u64(),
            Some(u64::from(uid))
        );
        let port = at(shard_container(&job), "/ports/0/containerPort").as_u64().unwrap();
        assert_eq!(
            get("EXPOSE").map(str::to_owned),
            Some(port.to_string()),
            "EXPOSE the metrics port"
        );
    }
}

#[test]
fn build_context_holds_everything_the_crate_compiles_in() {
    // The image is built from the repository root with Dockerfile.dockerignore: the crate
    // must need nothing outside the repository, and nothing the ignore file leaves out.
    let manifest = read(&repo().join("Cargo.toml"));
    assert!(
        !manifest.contains("path = \"..") && !manifest.contains("path = \"/"),
        "Cargo.toml reaches outside the repository"
    );
    let ignore_path = repo().join("deploy/container/Dockerfile.dockerignore");
    let ignored: Vec<String> = read(&ignore_path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect();
    assert!(
        ignored.iter().any(|i| i == "target"),
        "target/ (gigabytes) must stay out of the build context"
    );

    let root = repo().canonicalize().unwrap();
    let mut stack = vec![root.join("src")];
    let mut found = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = read(&path);
            for pattern in ["include_str!(\"", "include_bytes!(\""] {
                for (start, _) in source.match_indices(pattern) {
                    let rel = source[start + pattern.len()..].split('"').next().unwrap();
                    let included = path.parent().unwrap().join(rel).canonicalize();
                    let included = included.unwrap_or_else(|e| panic!("{}: {rel}: {e}", path.display()));
                    let inside = included
                        .strip_prefix(&root)
                        .unwrap_or_else(|_| panic!("{} includes {rel}, outside the repository", path.display()));
                    let first = inside
                        .components()
                        .next()
                        .unwrap()
                        .as_os_str()
                        .to_string_lossy()
                        .into_owned();
                    assert!(
                        !ignored.contains(&first),
                        "{} includes {rel}, which the build context leaves out",
                        path.display()
                    );
                    found += 1;
                }
            }
        }
    }
    assert!(
        found > 0,
        "the crate compiles in profiles/quick.toml and a font: the scan found neither"
    );
}
