//! Sharing by invitation: the token, its limits, members and what their feeds say.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn new_list(app: &TestApp, owner: &str, name: &str) -> Value {
    let response = app
        .post("/api/lists", &token(owner), &json!({"name": name}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()
}

async fn invite(app: &TestApp, owner: &str, list: &Value, body: Value) -> Value {
    let response = app
        .post(
            &format!("/api/lists/{}/invitations", list["id"]),
            &token(owner),
            &body,
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()
}

async fn accept(app: &TestApp, user: &str, secret: &Value) -> crate::support::app::TestResponse {
    app.post(
        "/api/invitations/accept",
        &token(user),
        &json!({"token": secret}),
    )
    .await
}

async fn an_invitation_is_a_secret_shown_once_and_used_as_it_says(app: &TestApp) {
    let list = new_list(app, "alice", "Groceries").await;
    let invitation = invite(app, "alice", &list, json!({"role": "editor"})).await;
    let secret = invitation["token"].as_str().unwrap_or_default().to_owned();
    assert!(secret.len() >= 43, "at least 256 bits: {secret}");
    assert_eq!(invitation["max_uses"], 1);
    assert_eq!(invitation["uses"], 0);
    // Listed without its secret.
    let listed = app
        .get(
            &format!("/api/lists/{}/invitations", list["id"]),
            &token("alice"),
        )
        .await
        .json();
    assert_eq!(listed[0]["id"], invitation["id"]);
    assert!(listed[0].get("token").is_none(), "{listed}");
    // The owner's own: a conflict, and no use taken.
    accept(app, "alice", &invitation["token"])
        .await
        .assert_error(StatusCode::CONFLICT);
    let joined = accept(app, "bob", &invitation["token"]).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text());
    assert_eq!(joined.json()["role"], "editor");
    assert_eq!(joined.json()["member_count"], 2);
    // Again: nothing changes.
    let again = accept(app, "bob", &invitation["token"]).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["member_count"], 2);
    // Used up for anyone else; unknown tokens alike.
    let used_up = accept(app, "carol", &invitation["token"])
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let unknown = accept(app, "carol", &json!("not-a-token"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(used_up, unknown, "no oracle");
    // Revoked, and of a deleted list: the same 404.
    let revoked = invite(
        app,
        "alice",
        &list,
        json!({"role": "viewer", "max_uses": 5}),
    )
    .await;
    let revoke = app
        .delete(
            &format!("/api/lists/{}/invitations/{}", list["id"], revoked["id"]),
            &token("alice"),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        accept(app, "carol", &revoked["token"])
            .await
            .assert_error(StatusCode::NOT_FOUND),
        unknown
    );
    let doomed = invite(app, "alice", &list, json!({"role": "viewer"})).await;
    app.delete(&format!("/api/lists/{}", list["id"]), &token("alice"))
        .await;
    assert_eq!(
        accept(app, "carol", &doomed["token"])
            .await
            .assert_error(StatusCode::NOT_FOUND),
        unknown
    );
    // Bad bodies.
    let other = new_list(app, "alice", "Other").await;
    for body in [
        json!({"role": "owner"}),
        json!({"role": "viewer", "max_uses": 51}),
        json!({"role": "viewer", "max_uses": 0}),
        json!({"role": "viewer", "expires_in_hours": 721}),
        json!({"role": "viewer", "expires_in_hours": 1.5}),
        json!({"role": "viewer", "extra": true}),
    ] {
        app.post(
            &format!("/api/lists/{}/invitations", other["id"]),
            &token("alice"),
            &body,
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
}

/// Removed, a member cannot come back with an invitation made before: the owner invites them
/// anew if they mean to.
async fn a_removed_member_needs_a_new_invitation(app: &TestApp) {
    let list = new_list(app, "alice", "Club").await;
    let open = invite(
        app,
        "alice",
        &list,
        json!({"role": "editor", "max_uses": 5}),
    )
    .await;
    assert_eq!(
        accept(app, "bob", &open["token"]).await.status,
        StatusCode::OK
    );
    let removed = app
        .delete(
            &format!("/api/lists/{}/members/bob", list["id"]),
            &token("alice"),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    accept(app, "bob", &open["token"])
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // Others still can; and a new invitation brings bob back.
    assert_eq!(
        accept(app, "carol", &open["token"]).await.status,
        StatusCode::OK
    );
    let again = invite(app, "alice", &list, json!({"role": "viewer"})).await;
    let back = accept(app, "bob", &again["token"]).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert_eq!(back.json()["role"], "viewer");
}

async fn an_inbox_is_never_shared(app: &TestApp) {
    app.create_task(&token("alice"), json!({"title": "t"}))
        .await;
    let inbox = app.get("/api/lists", &token("alice")).await.json()[0].clone();
    app.post(
        &format!("/api/lists/{}/invitations", inbox["id"]),
        &token("alice"),
        &json!({"role": "viewer"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT);
}

async fn a_list_holds_fifty_members_at_most(app: &TestApp) {
    let list = new_list(app, "alice", "Big").await;
    let invitation = invite(
        app,
        "alice",
        &list,
        json!({"role": "viewer", "max_uses": 50}),
    )
    .await;
    for n in 1..50 {
        let joined = accept(app, &format!("member{n}"), &invitation["token"]).await;
        assert_eq!(joined.status, StatusCode::OK, "{n}: {}", joined.text());
    }
    accept(app, "member50", &invitation["token"])
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let members = app
        .get(
            &format!("/api/lists/{}/members", list["id"]),
            &token("alice"),
        )
        .await
        .json();
    assert_eq!(members.as_array().map(Vec::len), Some(50));
}

async fn a_member_who_leaves_loses_the_list_in_the_feed(app: &TestApp) {
    let (alice, bob) = (token("alice"), token("bob"));
    let list = new_list(app, "alice", "Shared").await;
    let task = app
        .create_task(&alice, json!({"title": "shared", "list_id": list["id"]}))
        .await;
    let invitation = invite(app, "alice", &list, json!({"role": "editor"})).await;
    // Bob's feed before he joins: nothing of the list.
    let before = app
        .get("/api/tasks/changes?include=lists", &bob)
        .await
        .json();
    assert_eq!(before["changes"], json!([]));
    let cursor = before["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        accept(app, "bob", &invitation["token"]).await.status,
        StatusCode::OK
    );
    let joined = app
        .get(
            &format!("/api/tasks/changes?include=lists&since={cursor}"),
            &bob,
        )
        .await
        .json();
    let changes = joined["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes[0]["op"], "upsert");
    assert_eq!(
        changes[0]["list"]["id"], list["id"],
        "the list before its tasks"
    );
    assert_eq!(changes[0]["list"]["role"], "editor");
    assert!(
        changes.iter().any(|c| c["task"]["id"] == task["id"]),
        "the tasks that were there before he joined: {joined}"
    );
    let cursor = joined["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let tasks_only = app.get("/api/tasks/changes", &bob).await.json();
    let tasks_cursor = tasks_only["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // He leaves.
    let left = app
        .delete(&format!("/api/lists/{}/members/bob", list["id"]), &bob)
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text());
    let gone = app
        .get(
            &format!("/api/tasks/changes?include=lists&since={cursor}"),
            &bob,
        )
        .await
        .json();
    assert!(
        gone["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["op"] == "delete" && c["list_id"] == list["id"])),
        "{gone}"
    );
    // A client that knows no lists hears of each task instead.
    let tasks_gone = app
        .get(&format!("/api/tasks/changes?since={tasks_cursor}"), &bob)
        .await
        .json();
    assert!(
        tasks_gone["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["op"] == "delete" && c["id"] == task["id"])),
        "{tasks_gone}"
    );
    // And nothing of the list after: alice's next change is not his.
    app.patch(&TestApp::url_of(&task), &alice, &json!({"title": "later"}))
        .await;
    let after = app
        .get(
            &format!(
                "/api/tasks/changes?include=lists&since={}",
                gone["next_cursor"].as_str().unwrap_or_default()
            ),
            &bob,
        )
        .await
        .json();
    assert_eq!(after["changes"], json!([]));
    app.get(&TestApp::url_of(&task), &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn ownership_moves_by_transfer_only(app: &TestApp) {
    let list = new_list(app, "alice", "Handover").await;
    let invitation = invite(app, "alice", &list, json!({"role": "viewer"})).await;
    accept(app, "bob", &invitation["token"]).await;
    let url = format!("/api/lists/{}", list["id"]);
    app.delete(&format!("{url}/members/alice"), &token("alice"))
        .await
        .assert_error(StatusCode::CONFLICT);
    let handed = app
        .post(
            &format!("{url}/transfer"),
            &token("alice"),
            &json!({"user_id": "bob"}),
        )
        .await;
    assert_eq!(handed.status, StatusCode::OK, "{}", handed.text());
    assert_eq!(handed.json()["role"], "editor");
    assert_eq!(handed.json()["owner_id"], "bob");
    let as_bob = app.get(&url, &token("bob")).await.json();
    assert_eq!(as_bob["role"], "owner");
    // Now alice may leave.
    let left = app
        .delete(&format!("{url}/members/alice"), &token("alice"))
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT);
    app.get(&url, &token("alice"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn your_data_is_yours_to_take_and_to_delete(app: &TestApp) {
    let (alice, bob) = (token("alice"), token("bob"));
    let mine = new_list(app, "alice", "Mine").await;
    app.create_task(&alice, json!({"title": "in mine", "list_id": mine["id"]}))
        .await;
    let bobs = new_list(app, "bob", "Bob's").await;
    let invitation = invite(app, "bob", &bobs, json!({"role": "editor"})).await;
    accept(app, "alice", &invitation["token"]).await;
    let elsewhere = app
        .create_task(
            &alice,
            json!({"title": "in bob's", "list_id": bobs["id"], "assignee_id": "alice"}),
        )
        .await;
    let invitation = invite(app, "alice", &mine, json!({"role": "viewer"})).await;
    accept(app, "bob", &invitation["token"]).await;
    let export = app.get("/api/me/export", &alice).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text());
    let export = export.json();
    assert_eq!(export["user_id"], "alice");
    assert_eq!(export["lists"][0]["id"], mine["id"]);
    assert_eq!(
        export["lists"][0]["members"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(export["lists"][0]["tasks"][0]["title"], "in mine");
    assert_eq!(export["memberships"][0]["id"], bobs["id"]);
    assert_eq!(export["tasks_elsewhere"][0]["id"], elsewhere["id"]);
    // Deleted: bob loses alice's list, keeps the task she made in his, unassigned.
    assert_eq!(
        app.delete("/api/me", &alice).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/api/lists/{}", mine["id"]), &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let kept = app.get(&TestApp::url_of(&elsewhere), &bob).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.json()["assignee_id"], Value::Null);
    assert_eq!(kept.json()["user_id"], "alice");
    let members = app
        .get(&format!("/api/lists/{}/members", bobs["id"]), &bob)
        .await
        .json();
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    // Nothing of hers is left: listing her lists gives her a new, empty Inbox.
    let fresh = app.get("/api/lists", &alice).await.json();
    assert_eq!(fresh.as_array().map(Vec::len), Some(1), "{fresh}");
    assert_eq!(fresh[0]["is_inbox"], true);
    assert_eq!(app.get("/api/tasks", &alice).await.json(), json!([]));
    let export = app.get("/api/me/export", &alice).await.json();
    assert_eq!(
        export["tasks_elsewhere"],
        json!([]),
        "not even what she made in bob's"
    );
}

/// An assignee is a member of the task's list: whoever leaves a list, or is removed from it,
/// is unassigned from its tasks in the same write, and the members still there see the change.
async fn leaving_a_list_ends_ones_assignments_in_it(app: &TestApp) {
    let (alice, bob, carol) = (token("alice"), token("bob"), token("carol"));
    let list = new_list(app, "alice", "Chores").await;
    for user in ["bob", "carol"] {
        let invitation = invite(app, "alice", &list, json!({"role": "editor"})).await;
        assert_eq!(
            accept(app, user, &invitation["token"]).await.status,
            StatusCode::OK
        );
    }
    let assign = async |title: &str, assignee: &str| {
        app.create_task(
            &alice,
            json!({"title": title, "list_id": list["id"], "assignee_id": assignee}),
        )
        .await
    };
    let bobs = assign("dishes", "bob").await;
    let carols = assign("laundry", "carol").await;
    // Bob's own task elsewhere keeps its assignee: only this list's assignments end.
    let inbox_task = app
        .create_task(&bob, json!({"title": "mine", "assignee_id": "bob"}))
        .await;
    let cursor = app.get("/api/tasks/changes", &alice).await.json()["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let left = app
        .delete(&format!("/api/lists/{}/members/bob", list["id"]), &bob)
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.text());
    let dishes = app.get(&TestApp::url_of(&bobs), &alice).await.json();
    assert_eq!(dishes["assignee_id"], Value::Null, "{dishes}");
    assert_eq!(dishes["version"], 2, "a change of the task: {dishes}");
    let changes = app
        .get(&format!("/api/tasks/changes?since={cursor}"), &alice)
        .await
        .json();
    assert!(
        changes["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["task"]["id"] == bobs["id"] && c["task"]["assignee_id"].is_null())),
        "alice's feed carries the unassignment: {changes}"
    );
    let mine = app.get(&TestApp::url_of(&inbox_task), &bob).await.json();
    assert_eq!(mine["assignee_id"], "bob");
    // Removed by the owner: the same.
    let removed = app
        .delete(&format!("/api/lists/{}/members/carol", list["id"]), &alice)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text());
    let laundry = app.get(&TestApp::url_of(&carols), &alice).await.json();
    assert_eq!(laundry["assignee_id"], Value::Null, "{laundry}");
    // A refused removal unassigns nobody: carol, no longer a member, cannot remove alice,
    // and a stranger's request changes nothing.
    let reassigned = app
        .create_task(
            &alice,
            json!({"title": "windows", "list_id": list["id"], "assignee_id": "alice"}),
        )
        .await;
    app.delete(&format!("/api/lists/{}/members/alice", list["id"]), &carol)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let windows = app.get(&TestApp::url_of(&reassigned), &alice).await.json();
    assert_eq!(windows["assignee_id"], "alice");
    assert_eq!(windows["version"], 1);
}

backend_tests!(
    leaving_a_list_ends_ones_assignments_in_it,
    an_invitation_is_a_secret_shown_once_and_used_as_it_says,
    an_inbox_is_never_shared,
    a_removed_member_needs_a_new_invitation,
    a_list_holds_fifty_members_at_most,
    a_member_who_leaves_loses_the_list_in_the_feed,
    ownership_moves_by_transfer_only,
    your_data_is_yours_to_take_and_to_delete,
);
