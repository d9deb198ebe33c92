//! The `where` of a list and a count, and the binding of a keyset's sort value.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::super::text;
use crate::domain::query::{Assignee, Parent};
use crate::domain::{Filter, SortValue, UserId};

/// Binds a sort value as PostgreSQL compares it with its column.
pub(super) fn push_sort_value(query: &mut QueryBuilder<Postgres>, value: &SortValue) {
    match value {
        SortValue::Micros(micros) => {
            query.push_bind(micros.and_then(DateTime::<Utc>::from_timestamp_micros));
        }
        SortValue::Rank(rank) => {
            query.push_bind(i32::try_from(*rank).unwrap_or(i32::MAX));
        }
        SortValue::Text(text) => {
            query.push_bind(text.clone());
        }
    }
}

/// `where` with the caller's lists and every filter of `filter`.
pub(super) fn push_filter(query: &mut QueryBuilder<Postgres>, owner: &UserId, filter: &Filter) {
    query.push(" where list_id in (");
    push_lists(query, owner, filter);
    query.push(")");
    push_conditions(query, owner, filter);
}

/// The ids of the caller's lists `filter` reads: the live ones (a list in the trash takes its
/// tasks with it, out of every view, the trash of tasks included, until it is restored), or
/// the one it names.
pub(super) fn push_lists(query: &mut QueryBuilder<Postgres>, owner: &UserId, filter: &Filter) {
    query
        .push(
            "select m.list_id as member_list from list_members m join lists l \
             on l.id = m.list_id where l.deleted_at is null and m.user_id = ",
        )
        .push_bind(owner.as_str().to_owned());
    if let Some(list) = filter.list {
        query.push(" and m.list_id = ").push_bind(list.get());
    }
}

/// Every condition of `filter` but the lists: ` and …` each.
pub(super) fn push_conditions(query: &mut QueryBuilder<Postgres>, owner: &UserId, filter: &Filter) {
    match &filter.assignee {
        None => {}
        Some(Assignee::Nobody) => {
            query.push(" and assignee_id is null");
        }
        Some(Assignee::Me) => {
            query
                .push(" and assignee_id = ")
                .push_bind(owner.as_str().to_owned());
        }
        Some(Assignee::User(user)) => {
            query
                .push(" and assignee_id = ")
                .push_bind(user.as_str().to_owned());
        }
    }
    match filter.parent {
        None => {}
        Some(Parent::Nobody) => {
            query.push(" and parent_id is null");
        }
        Some(Parent::Task(parent)) => {
            query.push(" and parent_id = ").push_bind(parent.get());
        }
    }
    if let Some(uid) = &filter.uid {
        query.push(" and uid = ").push_bind(uid.as_str().to_owned());
    }
    query.push(if filter.trashed {
        " and deleted_at is not null"
    } else {
        " and deleted_at is null"
    });
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query
            .push(" and status = any(")
            .push_bind(statuses)
            .push(")");
    }
    if !filter.tags.is_empty() {
        query
            .push(" and tag_keys @> ")
            .push_bind(text::tag_keys(&filter.tags));
    }
    if !filter.priorities.is_empty() {
        let ranks: Vec<i32> = filter.priorities.iter().map(|p| p.rank().into()).collect();
        query
            .push(" and priority = any(")
            .push_bind(ranks)
            .push(")");
    }
    if let Some(search) = &filter.search {
        let pattern = text::like_pattern(search);
        query
            .push(" and (title_key like ")
            .push_bind(pattern.clone())
            .push(" escape '\\' or description_key like ")
            .push_bind(pattern)
            .push(" escape '\\')");
    }
    if let Some(before) = filter.due_before {
        query.push(" and due_at < ").push_bind(before);
    }
    if let Some(after) = filter.due_after {
        query.push(" and due_at > ").push_bind(after);
    }
    match filter.has_due {
        Some(true) => {
            query.push(" and due_at is not null");
        }
        Some(false) => {
            query.push(" and due_at is null");
        }
        None => {}
    }
    if let Some(since) = filter.updated_since {
        query.push(" and updated_at >= ").push_bind(since);
    }
}
