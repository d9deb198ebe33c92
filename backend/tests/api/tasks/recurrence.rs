//! Repeating tasks (docs/subtasks-and-repeating-tasks.md): the RRULE subset, evaluated in the
//! rule's time zone; a completion moves the task to its next occurrence, once per version.
//! `interop/recurrence/` checks the occurrences against python-dateutil on random rules.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

fn etag_of(task: &Value) -> String {
    format!("\"{}-{}\"", task["id"], task["version"])
}

async fn complete(app: &TestApp, task: &Value) -> Value {
    let done = app
        .patch(
            &TestApp::url_of(task),
            &token("alice"),
            &json!({"status": "completed"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    done.json()
}

async fn a_completion_moves_a_weekly_berlin_task_across_both_changes(app: &TestApp) {
    let alice = token("alice");
    // Monday 09:00 in Berlin (CET), the week before the clocks go forward.
    let task = app
        .create_task(
            &alice,
            json!({
                "title": "stand-up",
                "due_at": "2027-03-22T08:00:00Z",
                "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "time_zone": "Europe/Berlin"},
            }),
        )
        .await;
    assert_eq!(
        task["recurrence"],
        json!({"rrule": "FREQ=WEEKLY;BYDAY=MO", "from": "due", "time_zone": "Europe/Berlin"})
    );
    assert_eq!(task["completed_count"], 0);
    assert_eq!(task["last_completed_at"], Value::Null);
    let next = complete(app, &task).await;
    // Still 09:00 local: 07:00 UTC in summer time.
    assert_eq!(next["due_at"], "2027-03-29T07:00:00Z");
    assert_eq!(next["status"], "pending");
    assert_eq!(next["completed_at"], Value::Null);
    assert_eq!(next["completed_count"], 1);
    assert!(next["last_completed_at"].is_string(), "{next}");
    assert_eq!(
        next["version"].as_i64(),
        task["version"].as_i64().map(|v| v + 1)
    );

    // The week before the clocks go back, by hand: the rule starts again from there.
    let october = app
        .patch(
            &TestApp::url_of(&task),
            &alice,
            &json!({"due_at": "2027-10-25T07:00:00Z"}),
        )
        .await
        .json();
    let next = complete(app, &october).await;
    assert_eq!(next["due_at"], "2027-11-01T08:00:00Z", "09:00 CET again");
    assert_eq!(next["completed_count"], 2);
}

async fn a_monthly_rule_on_the_31st_skips_short_months_and_count_ends_it(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(
            &alice,
            json!({
                "title": "rent",
                "due_at": "2027-01-31T10:00:00Z",
                "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3"},
            }),
        )
        .await;
    let second = complete(app, &task).await;
    assert_eq!(second["due_at"], "2027-03-31T10:00:00Z", "no 31 February");
    let third = complete(app, &second).await;
    assert_eq!(third["due_at"], "2027-05-31T10:00:00Z", "no 31 April");
    let done = complete(app, &third).await;
    assert_eq!(
        done["status"], "completed",
        "COUNT=3: the third was the last"
    );
    assert_eq!(done["due_at"], "2027-05-31T10:00:00Z");
    assert_eq!(done["completed_count"], 3);
    assert!(done["completed_at"].is_string());

    // A due date set by hand starts the rule again, COUNT included.
    let daily = app
        .create_task(
            &alice,
            json!({
                "title": "twice",
                "due_at": "2027-01-01T10:00:00Z",
                "recurrence": {"rrule": "FREQ=DAILY;COUNT=2"},
            }),
        )
        .await;
    let once = complete(app, &daily).await;
    assert_eq!(once["due_at"], "2027-01-02T10:00:00Z");
    let moved = app
        .patch(
            &TestApp::url_of(&once),
            &alice,
            &json!({"due_at": "2027-02-01T10:00:00Z"}),
        )
        .await
        .json();
    let again = complete(app, &moved).await;
    assert_eq!(
        (again["status"].as_str(), again["due_at"].as_str()),
        (Some("pending"), Some("2027-02-02T10:00:00Z")),
        "the first of two again: {again}"
    );
    assert_eq!(again["completed_count"], 2, "the count of all completions");
    assert_eq!(complete(app, &again).await["status"], "completed");

    // From completion: the next occurrence after now, not after the old due date.
    let chore = app
        .create_task(
            &alice,
            json!({
                "title": "water the plants",
                "due_at": "2020-01-01T18:00:00Z",
                "recurrence": {"rrule": "FREQ=DAILY", "from": "completion"},
            }),
        )
        .await;
    let next = complete(app, &chore).await;
    let due: chrono::DateTime<chrono::Utc> = next["due_at"]
        .as_str()
        .expect("due")
        .parse()
        .expect("a date");
    let now = chrono::Utc::now();
    assert!(
        due > now && due - now <= chrono::TimeDelta::days(1),
        "{due}"
    );
}

async fn rules_outside_the_subset_are_refused_and_change_nothing(app: &TestApp) {
    let alice = token("alice");
    let due = "2027-01-01T09:00:00Z";
    for (recurrence, named) in [
        (json!({"rrule": "FREQ=HOURLY"}), "FREQ=HOURLY"),
        (
            json!({"rrule": "FREQ=MONTHLY;BYSETPOS=1;BYDAY=MO"}),
            "BYSETPOS",
        ),
        (json!({"rrule": "FREQ=YEARLY;BYWEEKNO=20"}), "BYWEEKNO"),
        (json!({"rrule": "FREQ=DAILY;INTERVAL=0"}), "INTERVAL"),
        (json!({"rrule": "FREQ=DAILY;INTERVAL=10000"}), "INTERVAL"),
        (
            json!({"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z"}),
            "COUNT and UNTIL",
        ),
        (
            json!({"rrule": "FREQ=DAILY", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (json!({"rrule": "FREQ=WEEKLY;BYMONTHDAY=3"}), "rrule"),
        (
            json!({"rrule": "FREQ=DAILY", "from": "later"}),
            "recurrence",
        ),
        (
            json!({"rrule": "FREQ=DAILY", "from": null}),
            "recurrence.from",
        ),
        (json!({"rrule": "FREQ=DAILY", "dtstart": "x"}), "recurrence"),
    ] {
        let refused = app
            .post(
                "/api/tasks",
                &alice,
                &json!({"title": "x", "due_at": due, "recurrence": recurrence}),
            )
            .await;
        let body = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(named),
            "{recurrence}: {body}"
        );
    }
    // Without a due date: at create, and by clearing it or setting a rule later.
    app.post(
        "/api/tasks",
        &alice,
        &json!({"title": "x", "recurrence": {"rrule": "FREQ=DAILY"}}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let plain = app.create_task(&alice, json!({"title": "plain"})).await;
    app.patch(
        &TestApp::url_of(&plain),
        &alice,
        &json!({"recurrence": {"rrule": "FREQ=DAILY"}}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let repeating = app
        .create_task(
            &alice,
            json!({"title": "r", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY"}}),
        )
        .await;
    app.patch(
        &TestApp::url_of(&repeating),
        &alice,
        &json!({"due_at": null}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let listed = app.get("/api/tasks", &alice).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let now = app.get(&TestApp::url_of(&repeating), &alice).await.json();
    assert_eq!(now, repeating, "unchanged");
    // Stopping the rule, and the task completes as any other.
    let stopped = app
        .patch(
            &TestApp::url_of(&repeating),
            &alice,
            &json!({"recurrence": null, "status": "completed"}),
        )
        .await
        .json();
    assert_eq!(stopped["recurrence"], Value::Null);
    assert_eq!(stopped["status"], "completed");
}

/// Two devices complete the same occurrence with the same `If-Match`: one wins, the other is
/// told the task changed, and the due date moves once.
async fn two_devices_completing_one_occurrence_advance_it_once(app: &TestApp) {
    let alice = token("alice");
    for round in 0..100 {
        let task = app
            .create_task(
                &alice,
                json!({
                    "title": format!("round {round}"),
                    "due_at": "2027-01-01T09:00:00Z",
                    "recurrence": {"rrule": "FREQ=DAILY"},
                }),
            )
            .await;
        let url = TestApp::url_of(&task);
        let etag = etag_of(&task);
        let device = || {
            app.request(Method::PATCH, &url)
                .token(&alice)
                .header("if-match", &etag)
                .json(&json!({"status": "completed"}))
                .send()
        };
        let (a, b) = tokio::join!(device(), device());
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
            "round {round}: {} / {}",
            a.text(),
            b.text()
        );
        let now = app.get(&url, &alice).await.json();
        assert_eq!(now["due_at"], "2027-01-02T09:00:00Z", "round {round}");
        assert_eq!(now["completed_count"], 1, "round {round}");
    }
}

backend_tests!(
    a_completion_moves_a_weekly_berlin_task_across_both_changes,
    a_monthly_rule_on_the_31st_skips_short_months_and_count_ends_it,
    rules_outside_the_subset_are_refused_and_change_nothing,
    two_devices_completing_one_occurrence_advance_it_once,
);
