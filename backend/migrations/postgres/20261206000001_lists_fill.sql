-- Lists, second step: every task written before lists goes to its creator's Inbox, its
-- changes at positions from 2^39 up in the order they were made (row locks only).

update tasks set list_id = numbered.list_id, change_pos = numbered.pos
from (
    select tasks.id, lists.id as list_id, nextval('migrated_positions') as pos
    from tasks join lists on lists.inbox_of = tasks.user_id
    where tasks.list_id is null
    order by tasks.user_id, tasks.change_seq
) numbered
where tasks.id = numbered.id;

update lists set last_pos = greatest(lists.change_pos, newest.pos)
from (select list_id, max(change_pos) as pos from tasks group by list_id) newest
where newest.list_id = lists.id;
