//! Topic aliases and hidden topics (`[policy.topics]`) against the real cluster, as real clients
//! see them: the Java client (producer, consumer group with commits, admin listing, describe,
//! configs, committed offsets) and librdkafka (metadata, produce, consume, commit, offsets) use an
//! alias as if it were the topic, while the broker holds the records and the committed offsets
//! under the upstream name; a hidden topic is absent from every listing and unknown when named.

use super::cluster::shared;
use super::other_clients::run_python;
use super::scenario::JavaScenario;
use super::sluice::Sluice;
use super::{json_field, unique_name};

#[test]
fn aliased_and_hidden_topics_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let upstream = unique_name("it-tm-upstream");
    let alias = unique_name("it-tm-alias");
    let hidden = unique_name("it-tm-secret");
    let policy = format!(
        r#"
[policy.topics]
hidden = [{{ prefix = "it-tm-secret" }}]

[[policy.topics.alias]]
name = "{alias}"
upstream = "{upstream}"
"#
    );
    let sluice = Sluice::start_with(&cluster, 2, &policy);
    let forbid = cluster
        .client_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");

    // Java: also sets up both topics and checks from the broker's side, so it connects to the
    // brokers directly for that part (a harness probe).
    let outcome = JavaScenario::new("topic-map", &sluice.bootstrap())
        .arg("alias", &alias)
        .arg("upstream", &upstream)
        .arg("hidden", &hidden)
        .arg("direct", cluster.bootstrap_client())
        .arg("forbid-ports", &forbid)
        .arg("records", 300)
        .harness_probe()
        .run();
    let line = outcome.assert_ok().to_string();
    assert_eq!(
        json_field(&line, "offsets_via_sluice"),
        Some("300"),
        "{line}"
    );
    assert_eq!(
        json_field(&line, "offsets_on_broker"),
        Some("300"),
        "{line}"
    );

    // librdkafka, through Sluice only: 200 records through `topic`.
    let rdk = |topic: &str| {
        run_python(
            "topic-map",
            &sluice.bootstrap(),
            topic,
            &[
                "--upstream",
                &upstream,
                "--hidden",
                &hidden,
                "--records",
                "200",
                "--forbid-ports",
                &forbid,
            ],
        )
    };
    let line = rdk(&alias);
    // Java's 300 records and librdkafka's 200, all committed by librdkafka's group.
    assert_eq!(json_field(&line, "committed"), Some("500"), "{line}");

    // A reload renames the alias, live: new requests see the new name, the records and the
    // committed offsets stay with the upstream topic.
    let alias2 = unique_name("it-tm-renamed");
    let path = sluice.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).expect("read config");
    std::fs::write(
        &path,
        text.replace(
            &format!("name = \"{alias}\""),
            &format!("name = \"{alias2}\""),
        ),
    )
    .expect("write config");
    let (status, body) = sluice.admin("POST", "/reload", "", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"outcome\": \"applied\""), "{body}");
    let line = rdk(&alias2);
    assert_eq!(json_field(&line, "committed"), Some("700"), "{line}");

    // Nothing was refused or failed to map on the way: the only connection errors allowed are
    // clients vanishing (the scenario processes exit without closing every connection).
    let errors: Vec<(String, f64)> = sluice
        .metrics()
        .samples("sluice_connection_errors_total")
        .into_iter()
        .filter(|(labels, v)| {
            *v > 0.0
                && !labels.contains("reason=\"client_io\"")
                && !labels.contains("reason=\"client_closed_in_flight\"")
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{}", sluice.log_tail(100));
}
