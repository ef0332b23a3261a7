"""Statements of the per-task path, with their SQL built once.

The ORM compiles every query anew: on our 2-core machines that costs
0.15-1 ms a statement (more with joins), against about 0.03 ms to run it,
and a task (recommendation and report) runs about twenty. `Query`,
`insert` and `update` build the same SQL (one table, or one joined
foreign key) from the model's metadata once per database and shape.
Values are prepared with each field's own `get_db_prep_*`, and rows read
are converted by the backend's and the fields' converters and built as
`Model.from_db` builds them, as the ORM's compiler does: what is read and
written is what the ORM would read and write, on SQLite and on PostgreSQL.

They send no model signals and skip custom `save()` methods: use them only
for models with neither (the per-task tables).
"""

from functools import cached_property, lru_cache
from inspect import getattr_static

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init


def _value(field, value, connection):
    """A filter's value as the database takes it; a model instance stands
    for the key a relation points at (not always its primary key)."""
    if isinstance(value, Model):
        value = getattr(value, field.target_field.attname if field.is_relation else value._meta.pk.attname)
    return field.get_db_prep_value(value, connection, prepared=False)


class Query:
    """One model's rows by equality (or `name__in`) filters on its fields,
    ANDed: Query(QEntry, "agent", "task_type", "state_key__in"), selected by
    calling it or updated by `update`.

    `where` is one more SQL condition over the table (aliased `T`); its
    parameters follow the filters' values, prepared as `where_fields` (one
    field, or the name of one of the model's, per placeholder).
    `lock` adds FOR UPDATE where the database has it (SQLite's writer lock,
    taken at BEGIN IMMEDIATE, already serialises writers); `defer` leaves
    columns out (loaded on first access, as QuerySet.defer does); `extra`
    names SQL expressions over `T` selected beside the fields, set on each
    instance like QuerySet.annotate; `related` names a foreign key whose row
    is joined (aliased `R`; an outer join for a nullable key) and cached on
    each instance, as select_related, without its `related_defer` columns.
    """

    def __init__(self, model, *filters, where="", where_fields=(), lock=False, defer=(), extra=None, related=None,
                 related_defer=()):
        if lock and related:
            raise ValueError("A locking query joins nothing: PostgreSQL cannot lock an outer join's rows.")
        self.model = model
        self.filters = [(name.removesuffix("__in"), name.endswith("__in")) for name in filters]
        self.fields = {name: model._meta.get_field(name) for name, _ in self.filters}
        self.where_fields = [model._meta.get_field(field) if isinstance(field, str) else field
                             for field in where_fields]
        self.selected = [field for field in model._meta.concrete_fields if field.name not in defer]
        self.names = [field.attname for field in self.selected]
        self.where, self.lock, self.extra = where, lock, dict(extra or {})
        self.related = model._meta.get_field(related) if related else None
        self.related_defer = related_defer
        self._sql_by_shape, self._converters = {}, {}

    @cached_property
    def related_fields(self):
        # Read at first use: the related model may not be loaded when the query is declared.
        if self.related is None:
            return []
        # The primary key stays, as QuerySet.defer keeps it: a NULL there is how an outer join says "no row".
        return [field for field in self.related.related_model._meta.concrete_fields
                if field.primary_key or field.name not in self.related_defer]

    @cached_property
    def _related_pk(self):
        return next(index for index, field in enumerate(self.related_fields) if field.primary_key)

    def __call__(self, *values, using=DEFAULT_DB_ALIAS):
        """The matching instances; an empty `__in` list matches nothing."""
        connection = connections[using]
        params, sizes = self._params(values, connection)
        if params is None:
            return []
        shape = (using, sizes)
        if shape not in self._sql_by_shape:
            self._sql_by_shape[shape] = self._sql(*shape)
        with connection.cursor() as cursor:
            cursor.execute(self._sql_by_shape[shape], params)
            found = cursor.fetchall()
        return [self._instance(row, using, connection) for row in found]

    def first(self, *values, using=DEFAULT_DB_ALIAS):
        found = self(*values, using=using)
        return found[0] if found else None

    def update(self, changes, *values, using=DEFAULT_DB_ALIAS):
        """UPDATE the matching rows' fields named in `changes` to its values
        (prepared by each field as save() would); returns how many rows."""
        connection = connections[using]
        params, sizes = self._params(values, connection)
        if params is None:
            return 0
        fields = [self.model._meta.get_field(name) for name in changes]
        shape = (using, sizes, tuple(changes))
        if shape not in self._sql_by_shape:
            quote = connection.ops.quote_name
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            self._sql_by_shape[shape] = (f"UPDATE {quote(self.model._meta.db_table)} AS T SET {assignments} "
                                         f"WHERE {self._conditions(quote, sizes)}")
        prepared = [field.get_db_prep_save(value, connection) for field, value in zip(fields, changes.values())]
        with connection.cursor() as cursor:
            cursor.execute(self._sql_by_shape[shape], [*prepared, *params])
            return cursor.rowcount

    def _params(self, values, connection):
        """The statement's parameters and the sizes of its `__in` lists, or
        (None, None) when one of those lists is empty."""
        params, sizes = [], []
        filtered, where_params = values[:len(self.filters)], values[len(self.filters):]
        for (name, many), value in zip(self.filters, filtered, strict=True):
            items = list(value) if many else [value]
            if not items:
                return None, None
            params += [_value(self.fields[name], item, connection) for item in items]
            sizes.append(len(items) if many else None)
        params += [_value(field, value, connection)
                   for field, value in zip(self.where_fields, where_params, strict=True)]
        return params, tuple(sizes)

    def _instance(self, row, using, connection):
        """A row as the ORM would hand it over: converted by the backend and
        the fields (as the compiler does), then built as Model.from_db builds
        it (with the joined related row cached on it)."""
        if using not in self._converters:
            columns = [field.get_col(self.model._meta.db_table) for field in self.selected]
            columns += [field.get_col(self.related.related_model._meta.db_table) for field in self.related_fields]
            self._converters[using] = [
                (position, column, converters) for position, column in enumerate(columns)
                if (converters := connection.ops.get_db_converters(column) + column.get_db_converters(connection))
            ]
        values = list(row)
        for position, column, converters in self._converters[using]:
            for convert in converters:
                values[position] = convert(values[position], column, connection)
        count, joined = len(self.names), len(self.related_fields)
        instance = from_db(self.model, using, self.names, values[:count])
        if self.related is not None:
            related = values[count:count + joined]
            # A key pointing at a row that is gone (left dangling until a deferred constraint check) joins
            # nothing, as for a NULL key: select_related gives None there too.
            if getattr(instance, self.related.attname) is not None and related[self._related_pk] is not None:
                related = from_db(self.related.related_model, using,
                                  [field.attname for field in self.related_fields], related)
            else:
                related = None
            self.related.set_cached_value(instance, related)
        for name, value in zip(self.extra, values[count + joined:]):
            setattr(instance, name, value)
        return instance

    def _conditions(self, quote, sizes):
        conditions = []
        for (name, _), size in zip(self.filters, sizes, strict=True):
            column = f"T.{quote(self.fields[name].column)}"
            conditions.append(f"{column} = %s" if size is None else f"{column} IN ({', '.join(['%s'] * size)})")
        if self.where:
            conditions.append(self.where)
        return " AND ".join(conditions or ["1 = 1"])

    def _sql(self, using, sizes):
        connection = connections[using]
        quote = connection.ops.quote_name
        selected = [f"T.{quote(field.column)}" for field in self.selected]
        selected += [f"R.{quote(field.column)}" for field in self.related_fields]
        selected += [f"{expression} AS {quote(name)}" for name, expression in self.extra.items()]
        tables = f"{quote(self.model._meta.db_table)} T"
        if self.related is not None:
            join = "LEFT OUTER JOIN" if self.related.null else "INNER JOIN"
            tables += (f" {join} {quote(self.related.related_model._meta.db_table)} R "
                       f"ON R.{quote(self.related.target_field.column)} = T.{quote(self.related.column)}")
        sql = f"SELECT {', '.join(selected)} FROM {tables} WHERE {self._conditions(quote, sizes)}"
        if self.lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        return sql


# A field's own value: ForeignKeyDeferredAttribute's setter only drops a
# cached related object besides, which a new instance has not got yet.
PLAIN_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)


@lru_cache(maxsize=64)
def _plain(model):
    """Whether Model.from_db would do no more than set the fields' values:
    neither the model nor a field's descriptor adds behaviour to it."""
    plain_descriptors = all(type(getattr_static(model, field.attname, None)) in PLAIN_DESCRIPTORS
                            for field in model._meta.concrete_fields)
    return plain_descriptors and model.from_db.__func__ is Model.from_db.__func__ and model.__init__ is Model.__init__


def from_db(model, using, names, values):
    """Model.from_db(using, names, values): the same attributes and state,
    without Model.__init__'s generic argument handling where it would only
    set the values (about 8 µs an instance against 2, and a task builds
    some 25)."""
    if not _plain(model) or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(using, names, values)
    instance = model.__new__(model)
    state = instance._state = ModelState()
    state.adding, state.db = False, using
    instance.__dict__.update(zip(names, values))
    return instance


@lru_cache(maxsize=64)
def _insert_sql(model, using):
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.db_returning]
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    returned = model._meta.pk if model._meta.pk.db_returning else None
    if returned is not None and connection.features.can_return_columns_from_insert:
        sql += f" RETURNING {quote(returned.column)}"
    return sql, fields, returned


def insert(instance, using=DEFAULT_DB_ALIAS):
    """INSERT `instance` as Model.save() would (defaults, auto_now) and set
    its primary key."""
    connection = connections[using]
    sql, fields, returned = _insert_sql(type(instance), using)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if returned is not None:
            pk = cursor.fetchone()[0] if connection.features.can_return_columns_from_insert else cursor.lastrowid
            instance.pk = returned.to_python(pk)
    instance._state.adding, instance._state.db = False, using
    return instance


@lru_cache(maxsize=64)
def _update_sql(model, names, using):
    quote = connections[using].ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return (f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s",
            fields)


def update(instance, names, using=DEFAULT_DB_ALIAS):
    """UPDATE the named fields of a saved `instance`, as save(update_fields=
    names) would (auto_now fields named are set); returns the rows changed."""
    connection = connections[using]
    sql, fields = _update_sql(type(instance), tuple(names), using)
    values = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in fields]
    pk = type(instance)._meta.pk.get_db_prep_value(instance.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, pk])
        return cursor.rowcount
