//! SQL that is the same on both backends: how a list pages and orders.

use crate::domain::{SortField, SortValue, TaskQuery};

/// The column a sort field sorts by, the same in both backends.
fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::DueAt => "due_at",
        SortField::Priority => "priority",
        SortField::Title => "title_key",
        SortField::Position => "position",
    }
}

/// Appends a list's keyset condition, order and page to `sql`, whose filters are in place;
/// `push_value` binds a sort value as the backend stores it. The same SQL on both backends
/// (row values, `nulls last`), so that they page alike.
pub(super) fn push_page<DB>(
    sql: &mut sqlx::QueryBuilder<DB>,
    query: &TaskQuery,
    push_value: fn(&mut sqlx::QueryBuilder<DB>, &SortValue),
) where
    DB: sqlx::Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    push_keyset(sql, query, push_value);
    push_order(sql, query);
    sql.push(" limit ").push_bind(i64::from(query.limit));
    sql.push(" offset ").push_bind(query.offset);
}

/// Appends the keyset condition of `query` (where the page starts), if any.
pub(super) fn push_keyset<DB>(
    sql: &mut sqlx::QueryBuilder<DB>,
    query: &TaskQuery,
    push_value: fn(&mut sqlx::QueryBuilder<DB>, &SortValue),
) where
    DB: sqlx::Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let column = sort_column(query.sort.field);
    let nullable = query.sort.field == SortField::DueAt;
    let after = if query.sort.descending { "<" } else { ">" };
    if let Some(keyset) = &query.after {
        let id = keyset.id.get();
        match &keyset.value {
            SortValue::Micros(None) => {
                sql.push(format_args!(" and {column} is null and id {after} "));
                sql.push_bind(id);
            }
            value => {
                sql.push(format_args!(" and (({column}, id) {after} ("));
                push_value(sql, value);
                sql.push(", ").push_bind(id);
                // Missing due dates come after every date, in either direction.
                sql.push(if nullable {
                    ") or due_at is null)"
                } else {
                    "))"
                });
            }
        }
    }
}

/// Appends the `order by` of `query` (unqualified columns).
pub(super) fn push_order<DB: sqlx::Database>(sql: &mut sqlx::QueryBuilder<DB>, query: &TaskQuery) {
    let column = sort_column(query.sort.field);
    let direction = if query.sort.descending { "desc" } else { "asc" };
    let nulls = if query.sort.field == SortField::DueAt {
        " nulls last"
    } else {
        ""
    };
    sql.push(format_args!(
        " order by {column} {direction}{nulls}, id {direction}"
    ));
}
