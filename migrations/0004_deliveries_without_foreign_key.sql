-- 0004_deliveries_without_foreign_key.sql: deliveries no longer carry a
-- foreign key to notifications.
--
-- Why: the key's check ran once per delivery inserted (5 us each, about a
-- fifth of PostgreSQL's work in a large fan-out), and PostgreSQL caches the
-- plan of that check per connection. Planned while the notifications table
-- was small (a new database, just analysed), the check scans the table, and
-- kept scanning it for every delivery as the table grew, until the next
-- analyse: an insert of a few deliveries read 12,000 notifications in
-- tests/integration/store/pg_notification_store_test.cc.
--
-- What still holds: Herald writes a notification and its deliveries in one
-- transaction, the deliveries taking the notification id of the row the
-- same transaction inserted (service/store/pg_notification_store.cc), and
-- nothing deletes notifications. Whatever deletes them one day (a retention
-- job) deletes their deliveries first, in the same transaction: the
-- ON DELETE CASCADE that the key gave is gone with it.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_notification_id_fkey;
