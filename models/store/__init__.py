"""The store: every prebuilt ("hot") statement of the message path, and the rows it writes.

Services and jobs call these functions with values and get values back: a claimed run is a
``RunState``, a transition's result is the run as it now is, reads are named tuples or plain ids.
No caller holds an ORM object of a row a hot statement changes, and none has to remember to flush:
each statement flushes the session's pending objects first, as the session's autoflush would
(``models/store/hot.py`` says how statements run and what that costs).

One module per group of tables: ``runs`` (the queue: create, claim, lease, status), ``events``
(the project feed and a run's own timeline), ``messages`` (the loop's turns), ``routing`` (who an
inbound message is for, what a run may send to), ``inbound`` (deliveries and reply windows),
``outbox`` (queued sends and their outcome).
"""
