//! Finding tasks (docs/api.md, "Lists: filters, sorting, paging"): every filter and sort,
//! checked against a reference computed in the test over ~500 seeded tasks, with offset pages,
//! cursor pages and the total agreeing.

use std::cmp::Ordering;

use axum::http::{Method, StatusCode};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

const TITLES: [&str; 9] = [
    "Buy milk",
    // A full-text query's own syntax, which search must take as plain text.
    "say \"hi\" AND *NEAR*",
    "ÄPFEL kaufen",
    "call Éloïse",
    "50% off_sale",
    "back\\slash",
    "straße fegen",
    "Write report",
    "école",
];
const TAGS: [&str; 6] = ["Work", "home", "Ärger", "x_y", "50%", "errand"];
const DUES: [&str; 4] = [
    "2027-01-01T00:00:00Z",
    "2027-01-01T12:00:00+05:00",
    "2027-06-30T23:59:59.5Z",
    "2028-02-29T08:00:00Z",
];

/// ~500 tasks with random fields for alice (and a few for bob, who must never show up).
async fn seed(app: &TestApp) -> Vec<Value> {
    let alice = token("alice");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut tasks = Vec::new();
    for n in 0..480 {
        let status = ["pending", "in_progress", "completed"][rng.gen_range(0..3)];
        let priority = ["none", "low", "medium", "high"][rng.gen_range(0..4)];
        let title = format!("{} {n}", TITLES[rng.gen_range(0..TITLES.len())]);
        let mut body = json!({"title": title, "status": status, "priority": priority});
        if rng.gen_bool(0.5) {
            body["description"] = json!(TITLES[rng.gen_range(0..TITLES.len())].to_uppercase());
        }
        if rng.gen_bool(0.6) {
            body["due_at"] = json!(DUES[rng.gen_range(0..DUES.len())]);
        }
        let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
        body["tags"] = json!(tags);
        tasks.push(app.create_task(&alice, body).await);
    }
    // Some manual order, so that positions are not just creation order.
    for _ in 0..40 {
        let moving = tasks[rng.gen_range(0..tasks.len())]["id"].clone();
        let anchor = tasks[rng.gen_range(0..tasks.len())]["id"].clone();
        if moving != anchor {
            let side = if rng.gen_bool(0.5) { "after" } else { "before" };
            let url = format!("/api/tasks/{moving}/move");
            let moved = app
                .post(&url, &alice, &json!({ side: anchor }))
                .await
                .json();
            let slot = tasks
                .iter_mut()
                .find(|t| t["id"] == moved["id"])
                .expect("seeded");
            *slot = moved;
        }
    }
    for n in 0..5 {
        app.create_task(
            &token("bob"),
            json!({"title": format!("Buy milk {n}"), "tags": ["Work"]}),
        )
        .await;
    }
    tasks
}

/// One row of the table: a query string, and the reference's filter and sort for it.
struct Case {
    query: &'static str,
    keep: fn(&Value) -> bool,
    sort: (&'static str, bool),
}

fn lower(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_lowercase()
}

fn has_tags(task: &Value, wanted: &[&str]) -> bool {
    let tags: Vec<String> = task["tags"]
        .as_array()
        .map(|tags| tags.iter().map(lower).collect())
        .unwrap_or_default();
    wanted
        .iter()
        .all(|want| tags.contains(&want.to_lowercase()))
}

fn contains(task: &Value, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    lower(&task["title"]).contains(&needle) || lower(&task["description"]).contains(&needle)
}

fn micros(value: &Value) -> Option<i64> {
    value.as_str().map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .timestamp_micros()
    })
}

fn rank(priority: &Value) -> i64 {
    ["none", "low", "medium", "high"]
        .iter()
        .position(|p| *p == priority)
        .expect("a priority") as i64
}

/// The reference order: the field, ties by id in the same direction, missing due dates last.
fn compare(a: &Value, b: &Value, field: &str, descending: bool) -> Ordering {
    let by_field = match field {
        "created_at" | "updated_at" => micros(&a[field]).cmp(&micros(&b[field])),
        "due_at" => match (micros(&a["due_at"]), micros(&b["due_at"])) {
            (Some(x), Some(y)) => x.cmp(&y),
            (None, None) => Ordering::Equal,
            // Last either way: undo the reversal below.
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
        },
        "priority" => rank(&a["priority"]).cmp(&rank(&b["priority"])),
        "title" => lower(&a["title"]).cmp(&lower(&b["title"])),
        "position" => a["position"].as_str().cmp(&b["position"].as_str()),
        other => panic!("unknown sort {other}"),
    };
    let ordering = by_field.then_with(|| a["id"].as_i64().cmp(&b["id"].as_i64()));
    if descending {
        ordering.reverse()
    } else {
        ordering
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            query: "",
            keep: |_| true,
            sort: ("created_at", true),
        },
        Case {
            query: "sort=title",
            keep: |_| true,
            sort: ("title", false),
        },
        Case {
            query: "sort=-title",
            keep: |_| true,
            sort: ("title", true),
        },
        Case {
            query: "sort=position",
            keep: |_| true,
            sort: ("position", false),
        },
        Case {
            query: "sort=-updated_at",
            keep: |_| true,
            sort: ("updated_at", true),
        },
        Case {
            query: "sort=due_at",
            keep: |_| true,
            sort: ("due_at", false),
        },
        Case {
            query: "sort=-due_at",
            keep: |_| true,
            sort: ("due_at", true),
        },
        Case {
            query: "sort=-priority",
            keep: |_| true,
            sort: ("priority", true),
        },
        Case {
            query: "status=pending&status=completed&sort=priority",
            keep: |t| t["status"] != "in_progress",
            sort: ("priority", false),
        },
        Case {
            query: "tag=work&tag=HOME&sort=due_at",
            keep: |t| has_tags(t, &["work", "home"]),
            sort: ("due_at", false),
        },
        Case {
            query: "status=in_progress&tag=%C3%A4rger&sort=-due_at",
            keep: |t| t["status"] == "in_progress" && has_tags(t, &["ärger"]),
            sort: ("due_at", true),
        },
        Case {
            query: "priority=high&priority=low&sort=title",
            keep: |t| t["priority"] == "high" || t["priority"] == "low",
            sort: ("title", false),
        },
        Case {
            query: "q=milk",
            keep: |t| contains(t, "milk"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=%C3%A4pfel",
            keep: |t| contains(t, "äpfel"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=%C3%89COLE&sort=title",
            keep: |t| contains(t, "école"),
            sort: ("title", false),
        },
        Case {
            query: "q=STRASSE",
            keep: |t| contains(t, "strasse"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=%25",
            keep: |t| contains(t, "%"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=f_s",
            keep: |t| contains(t, "f_s"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=k%5Cs",
            keep: |t| contains(t, "k\\s"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=%22hi%22%20and%20*n",
            keep: |t| contains(t, "\"hi\" and *n"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=%22h",
            keep: |t| contains(t, "\"h"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=l%20%C3%89",
            keep: |t| contains(t, "l é"),
            sort: ("created_at", true),
        },
        Case {
            query: "q=x_y",
            keep: |t| contains(t, "x_y"),
            sort: ("created_at", true),
        },
        Case {
            query: "has_due=false&sort=position",
            keep: |t| t["due_at"].is_null(),
            sort: ("position", false),
        },
        Case {
            query: "has_due=true&due_after=2027-01-01T00:00:00Z&due_before=2028-01-01T00:00:00Z",
            keep: |t| {
                micros(&t["due_at"]).is_some_and(|due| {
                    due > micros(&json!("2027-01-01T00:00:00Z")).unwrap_or_default()
                        && due < micros(&json!("2028-01-01T00:00:00Z")).unwrap_or_default()
                })
            },
            sort: ("created_at", true),
        },
        Case {
            query: "due_before=2027-01-01T07:00:00%2B00:00&sort=-priority",
            keep: |t| {
                micros(&t["due_at"])
                    .is_some_and(|due| due < micros(&json!("2027-01-01T07:00:00Z")).unwrap_or(0))
            },
            sort: ("priority", true),
        },
        Case {
            query: "tag=nosuchtag",
            keep: |_| false,
            sort: ("created_at", true),
        },
    ]
}

fn ids(tasks: &[Value]) -> Vec<i64> {
    tasks
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect()
}

/// Follows `Link: rel="next"` from `first` to the end.
async fn walk(app: &TestApp, token: &str, first: &str) -> (Vec<Value>, usize) {
    let mut url = first.to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let response = app.get(&url, token).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{url}: {}",
            response.text()
        );
        pages += 1;
        seen.extend(response.json().as_array().expect("a list").iter().cloned());
        match response.header("link") {
            Some(link) => {
                let next = link
                    .strip_prefix('<')
                    .and_then(|rest| rest.split_once(">; rel=\"next\""))
                    .map(|(next, _)| next.to_owned())
                    .unwrap_or_else(|| panic!("a next link: {link}"));
                url = next;
            }
            None => return (seen, pages),
        }
        assert!(pages < 1000, "the walk ends");
    }
}

async fn every_filter_and_sort_matches_the_reference(app: &TestApp) {
    let alice = token("alice");
    let seeded = seed(app).await;
    // Read back what is stored now (moves changed versions and positions).
    let (all, _) = walk(app, &alice, "/api/tasks?limit=100").await;
    assert_eq!(all.len(), seeded.len(), "alice sees exactly her tasks");
    for case in cases() {
        let mut expected: Vec<Value> = all.iter().filter(|t| (case.keep)(t)).cloned().collect();
        let (field, descending) = case.sort;
        expected.sort_by(|a, b| compare(a, b, field, descending));
        let expected = ids(&expected);

        let separator = if case.query.is_empty() { "" } else { "&" };
        let first = format!("/api/tasks?{}{separator}limit=37", case.query);
        let response = app.get(&first, &alice).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{}: {}",
            case.query,
            response.text()
        );
        assert_eq!(
            response.header("x-total-count"),
            Some(expected.len().to_string().as_str()),
            "total of {}",
            case.query
        );
        // Without the count: the same page and the same next link, and no total.
        let uncounted = app
            .request(Method::GET, &first)
            .token(&alice)
            .header("prefer", "count=none")
            .send()
            .await;
        assert_eq!(uncounted.status, StatusCode::OK, "{}", case.query);
        assert_eq!(uncounted.body, response.body, "uncounted {}", case.query);
        assert_eq!(uncounted.header("link"), response.header("link"));
        assert_eq!(uncounted.header("x-total-count"), None, "{}", case.query);
        assert_eq!(uncounted.header("preference-applied"), Some("count=none"));
        let (walked, pages) = walk(app, &alice, &first).await;
        assert_eq!(ids(&walked), expected, "cursor pages of {:?}", case.query);
        assert_eq!(pages, expected.len().div_ceil(37).max(1), "{}", case.query);

        let mut by_offset = Vec::new();
        for offset in (0..expected.len().max(1)).step_by(37) {
            let url = format!(
                "/api/tasks?{}{separator}limit=37&offset={offset}",
                case.query
            );
            by_offset.extend(ids(app
                .get(&url, &alice)
                .await
                .json()
                .as_array()
                .expect("list")));
        }
        assert_eq!(by_offset, expected, "offset pages of {:?}", case.query);
    }
}

async fn a_cursor_walk_during_inserts_sees_every_old_task_once(app: &TestApp) {
    let alice = token("alice");
    let mut before = Vec::new();
    for n in 0..60 {
        let task = app
            .create_task(&alice, json!({"title": format!("old {n}")}))
            .await;
        before.push(task["id"].as_i64().expect("id"));
    }
    for sort in ["-created_at", "position", "title", "-position"] {
        let mut url = format!("/api/tasks?sort={sort}&limit=7");
        let mut seen: Vec<i64> = Vec::new();
        let mut n = 0;
        loop {
            let response = app.get(&url, &alice).await;
            seen.extend(ids(response.json().as_array().expect("list")));
            // Writers keep adding tasks while the walk goes on.
            for _ in 0..3 {
                n += 1;
                app.create_task(&alice, json!({"title": format!("new {sort} {n}")}))
                    .await;
            }
            match response.header("link") {
                Some(link) => {
                    url = link
                        .trim_start_matches('<')
                        .split(">;")
                        .next()
                        .expect("url")
                        .to_owned();
                }
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{sort}: no task twice");
        for id in &before {
            assert!(seen.contains(id), "{sort}: task {id} was skipped");
        }
    }
}

async fn bad_list_queries_are_422(app: &TestApp) {
    let alice = token("alice");
    for n in 0..3 {
        app.create_task(&alice, json!({"title": format!("t{n}")}))
            .await;
    }
    let first = app.get("/api/tasks?limit=1&tag=", &alice).await;
    first.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let first = app.get("/api/tasks?limit=1&sort=title", &alice).await;
    let link = first.header("link").expect("a next page").to_owned();
    let cursor = link
        .split("cursor=")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("a cursor")
        .to_owned();
    // One character of the signed payload changed (to another base64 character).
    let first = if cursor.starts_with('e') { 'f' } else { 'e' };
    let tampered = format!("{first}{}", &cursor[1..]);
    let long_q = "q".repeat(201);
    for query in [
        format!("sort=title&cursor={tampered}"),
        format!("sort=-title&cursor={cursor}"),
        format!("sort=title&status=pending&cursor={cursor}"),
        format!("sort=title&cursor={cursor}&offset=1"),
        "sort=password".to_owned(),
        "limit=0".to_owned(),
        format!("q={long_q}"),
        "q=%00".to_owned(),
        "due_before=2027-01-01".to_owned(),
        "status=done".to_owned(),
        "has_due=1".to_owned(),
        "sort=title&sort=position".to_owned(),
    ] {
        let response = app.get(&format!("/api/tasks?{query}"), &alice).await;
        response.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    // A search of 10,000 characters does not even fit the request-target limit.
    let huge = format!("/api/tasks?q={}", "q".repeat(10_000));
    app.get(&huge, &alice)
        .await
        .assert_error(StatusCode::URI_TOO_LONG);
    // Bob cannot use alice's cursor either.
    app.get(
        &format!("/api/tasks?sort=title&limit=1&cursor={cursor}"),
        &token("bob"),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

/// Search reads what a task says now: a rename, a new description, the trash and the way
/// back out of it each change what a search finds, at once.
async fn search_follows_every_change_of_the_text(app: &TestApp) {
    let alice = token("alice");
    let found = |query: &'static str| {
        let alice = alice.clone();
        async move {
            let response = app.get(&format!("/api/tasks?q={query}"), &alice).await;
            assert_eq!(response.status, StatusCode::OK, "{query}");
            ids(response.json().as_array().expect("a list"))
        }
    };
    let task = app
        .create_task(
            &alice,
            json!({"title": "Walk the dog", "description": "Leash"}),
        )
        .await;
    let id = task["id"].as_i64().expect("an id");
    app.create_task(&alice, json!({"title": "Feed the cat"}))
        .await;
    assert_eq!(found("dog").await, vec![id]);
    assert_eq!(found("leash").await, vec![id]);
    let url = format!("/api/tasks/{id}");
    let renamed = app
        .patch(
            &url,
            &alice,
            &json!({"title": "Walk the horse", "description": null}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(found("dog").await, Vec::<i64>::new());
    assert_eq!(found("leash").await, Vec::<i64>::new());
    assert_eq!(found("horse").await, vec![id]);
    // A change of anything else keeps the task findable.
    let completed = app
        .patch(&url, &alice, &json!({"status": "completed"}))
        .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text());
    assert_eq!(found("horse").await, vec![id]);
    app.delete(&url, &alice).await;
    assert_eq!(found("horse").await, Vec::<i64>::new());
    let restored = app
        .post(&format!("{url}/restore"), &alice, &json!({}))
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text());
    assert_eq!(found("horse").await, vec![id]);
    // Nobody else finds it.
    let response = app.get("/api/tasks?q=horse", &token("bob")).await;
    assert_eq!(response.json(), json!([]));
}

/// `Prefer: count=none` drops the count and says so; the two pages are two representations,
/// each with its own tag, and the default is untouched.
async fn a_list_asked_for_no_count_answers_without_one(app: &TestApp) {
    let alice = token("alice");
    for n in 0..3 {
        let created = app
            .post("/api/tasks", &alice, &json!({ "title": format!("t{n}") }))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let asked = |prefer: &'static str| {
        let alice = alice.clone();
        async move {
            app.request(Method::GET, "/api/tasks?limit=2")
                .token(&alice)
                .header("prefer", prefer)
                .send()
                .await
        }
    };
    let plain = app.get("/api/tasks?limit=2", &alice).await;
    assert_eq!(plain.header("x-total-count"), Some("3"));
    assert_eq!(plain.header("preference-applied"), None);
    assert_eq!(plain.header("vary"), Some("prefer"));

    let exact = asked("count=exact").await;
    assert_eq!(exact.header("x-total-count"), Some("3"));
    assert_eq!(exact.header("preference-applied"), Some("count=exact"));
    assert_eq!(exact.header("etag"), plain.header("etag"));

    let none = asked("return=minimal, count=none").await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.header("x-total-count"), None);
    assert_eq!(none.header("preference-applied"), Some("count=none"));
    assert_eq!(none.body, plain.body);
    let tag = none.header("etag").expect("an etag").to_owned();
    assert_ne!(Some(tag.as_str()), plain.header("etag"));

    let revalidated = app
        .request(Method::GET, "/api/tasks?limit=2")
        .token(&alice)
        .header("prefer", "count=none")
        .header("if-none-match", &tag)
        .send()
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    // The counted page is not the one the tag names.
    let counted = app
        .request(Method::GET, "/api/tasks?limit=2")
        .token(&alice)
        .header("if-none-match", &tag)
        .send()
        .await;
    assert_eq!(counted.status, StatusCode::OK);
    assert_eq!(counted.header("x-total-count"), Some("3"));

    let unknown = asked("count=planned").await;
    assert_eq!(unknown.header("x-total-count"), Some("3"));
    assert_eq!(unknown.header("preference-applied"), None);
}

backend_tests!(
    a_list_asked_for_no_count_answers_without_one,
    search_follows_every_change_of_the_text,
    every_filter_and_sort_matches_the_reference,
    a_cursor_walk_during_inserts_sees_every_old_task_once,
    bad_list_queries_are_422,
);
