//! Convergence with people joining and leaving: members write concurrently (creates,
//! patches, moves within and between lists, deletes, restores) while the owner removes,
//! re-invites and changes the roles of members, and a syncing client per member pulls its feed
//! in small pages. When everything stops, each client's copy is exactly the lists and tasks
//! its member can read. A feed that forgot a loss, or a join's old tasks, fails this.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

/// One member's local copy, as a client keeps it from the feed with `include=lists`.
#[derive(Default)]
struct Copy {
    lists: BTreeMap<i64, Value>,
    tasks: BTreeMap<i64, Value>,
}

impl Copy {
    /// Applies one page; the next cursor and whether more follow.
    fn apply(&mut self, page: &Value) -> (String, bool) {
        for change in page["changes"].as_array().expect("changes") {
            match (
                change["op"].as_str(),
                change.get("list"),
                change.get("list_id"),
            ) {
                (Some("upsert"), Some(list), _) => {
                    self.lists.insert(id(list), list.clone());
                }
                (Some("upsert"), None, _) => {
                    let task = &change["task"];
                    self.tasks.insert(id(task), task.clone());
                }
                (Some("delete"), _, Some(list)) => {
                    let list = list.as_i64().expect("a list id");
                    self.lists.remove(&list);
                    self.tasks
                        .retain(|_, task| task["list_id"].as_i64() != Some(list));
                }
                (Some("delete"), _, None) => {
                    self.tasks
                        .remove(&change["id"].as_i64().expect("a task id"));
                }
                _ => panic!("unknown change {change}"),
            }
        }
        let next = page["next_cursor"].as_str().expect("a cursor").to_owned();
        (next, page["has_more"].as_bool().expect("has_more"))
    }
}

fn id(value: &Value) -> i64 {
    value["id"].as_i64().expect("an id")
}

/// What `user` can read now: their live lists and every live task of them.
async fn server_state(app: &TestApp, user: &str) -> Copy {
    let bearer = token(user);
    let mut copy = Copy::default();
    for list in app
        .get("/api/lists", &bearer)
        .await
        .json()
        .as_array()
        .expect("lists")
    {
        copy.lists.insert(id(list), list.clone());
    }
    let mut uri = "/api/tasks?sort=created_at&limit=100".to_owned();
    loop {
        let response = app.get(&uri, &bearer).await;
        assert_eq!(response.status, StatusCode::OK);
        for task in response.json().as_array().expect("tasks") {
            copy.tasks.insert(id(task), task.clone());
        }
        match response.header("link") {
            Some(link) => {
                uri = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("a link target")
                    .to_owned();
            }
            None => return copy,
        }
    }
}

async fn members_converge_while_people_join_and_leave(app: &TestApp) {
    for round in 0..3 {
        converge(app, round).await;
    }
}

async fn converge(app: &TestApp, round: u64) {
    let owner = format!("owner{round}");
    let members = [format!("bob{round}"), format!("carol{round}")];
    let people: Vec<String> = std::iter::once(owner.clone())
        .chain(members.clone())
        .collect();
    let mut lists = Vec::new();
    for name in ["one", "two"] {
        let list = app
            .post("/api/lists", &token(&owner), &json!({"name": name}))
            .await
            .json();
        for member in &members {
            join(app, &owner, &list, member, "editor").await;
        }
        lists.push(list["id"].as_i64().expect("a list id"));
    }
    let ids = std::sync::Mutex::new(Vec::<i64>::new());
    let writing = AtomicBool::new(true);
    let writer = |(user, seed): (String, u64)| {
        let (ids, lists) = (&ids, &lists);
        async move {
            let bearer = token(&user);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for step in 0..60 {
                let known: Vec<i64> = ids.lock().expect("ids").clone();
                let list = lists[rng.gen_range(0..lists.len())];
                let roll = rng.gen_range(0..100);
                if known.is_empty() || roll < 30 {
                    let body = match roll % 3 {
                        0 => json!({"title": format!("{user} {step}")}),
                        _ => json!({"title": format!("{user} {step}"), "list_id": list}),
                    };
                    let response = app.post("/api/tasks", &bearer, &body).await;
                    if response.status == StatusCode::CREATED {
                        ids.lock().expect("ids").push(id(&response.json()));
                    }
                    continue;
                }
                let task = known[rng.gen_range(0..known.len())];
                let url = format!("/api/tasks/{task}");
                let response = match roll {
                    30..50 => {
                        app.patch(&url, &bearer, &json!({"title": format!("{step}")}))
                            .await
                    }
                    50..65 => app.patch(&url, &bearer, &json!({"list_id": list})).await,
                    65..80 => {
                        let anchor = known[rng.gen_range(0..known.len())];
                        app.post(&format!("{url}/move"), &bearer, &json!({"after": anchor}))
                            .await
                    }
                    80..92 => app.delete(&url, &bearer).await,
                    _ => {
                        app.request(Method::POST, &format!("{url}/restore"))
                            .token(&bearer)
                            .send()
                            .await
                    }
                };
                // Refusals are expected: people lose access as they write.
                assert!(
                    response.status.as_u16() < 500,
                    "{}: {}",
                    response.status,
                    response.text()
                );
            }
        }
    };
    let churn = async {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + round);
        for _ in 0..30 {
            let member = &members[rng.gen_range(0..members.len())];
            let list = json!(lists[rng.gen_range(0..lists.len())]);
            let url = format!("/api/lists/{list}/members/{member}");
            match rng.gen_range(0..3) {
                0 => {
                    app.delete(&url, &token(&owner)).await;
                }
                1 => {
                    let role = if rng.gen_bool(0.5) {
                        "viewer"
                    } else {
                        "editor"
                    };
                    app.patch(&url, &token(&owner), &json!({"role": role}))
                        .await;
                }
                _ => join(app, &owner, &json!({"id": list}), member, "editor").await,
            }
            tokio::task::yield_now().await;
        }
    };
    let writers = async {
        let seeds = people
            .iter()
            .flat_map(|user| [(user.clone(), 1), (user.clone(), 2)])
            .enumerate()
            .map(|(n, (user, _))| (user, round * 100 + n as u64));
        tokio::join!(join_all(seeds.map(writer)), churn);
        writing.store(false, Ordering::SeqCst);
    };
    let syncer = |user: String| {
        let writing = &writing;
        async move {
            let mut copy = Copy::default();
            let mut cursor = String::new();
            loop {
                let done = !writing.load(Ordering::SeqCst);
                let response = app
                    .get(
                        &format!("/api/tasks/changes?include=lists&limit=7&since={cursor}"),
                        &token(&user),
                    )
                    .await;
                assert_eq!(response.status, StatusCode::OK, "{}", response.text());
                let (next, more) = copy.apply(&response.json());
                cursor = next;
                if done && !more {
                    return (user, copy);
                }
                tokio::task::yield_now().await;
            }
        }
    };
    let ((), copies) = tokio::join!(writers, join_all(people.iter().cloned().map(syncer)));
    for (user, copy) in copies {
        let server = server_state(app, &user).await;
        assert_eq!(
            copy.lists, server.lists,
            "round {round}, {user}: the same lists"
        );
        assert_eq!(
            copy.tasks.keys().collect::<Vec<_>>(),
            server.tasks.keys().collect::<Vec<_>>(),
            "round {round}, {user}: the same tasks"
        );
        assert_eq!(
            copy.tasks, server.tasks,
            "round {round}, {user}: in the same state"
        );
    }
}

/// `member` joins `list` (theirs already: nothing changes).
async fn join(app: &TestApp, owner: &str, list: &Value, member: &str, role: &str) {
    let invitation = app
        .post(
            &format!("/api/lists/{}/invitations", list["id"]),
            &token(owner),
            &json!({"role": role}),
        )
        .await;
    assert_eq!(
        invitation.status,
        StatusCode::CREATED,
        "{}",
        invitation.text()
    );
    let accepted = app
        .post(
            "/api/invitations/accept",
            &token(member),
            &json!({"token": invitation.json()["token"]}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
}

backend_tests!(members_converge_while_people_join_and_leave);
