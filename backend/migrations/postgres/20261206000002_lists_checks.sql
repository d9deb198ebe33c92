-- Lists, third step: the checks that make list_id and change_pos not null, and the list's
-- foreign key, added without reading the table (held for a moment: a catalogue change).

alter table tasks add constraint tasks_list_id_not_null check (list_id is not null) not valid;
alter table tasks add constraint tasks_change_pos_not_null check (change_pos is not null) not valid;
alter table tasks add constraint tasks_list_id_fkey foreign key (list_id) references lists (id)
    not valid;
