"""Alembic environment: the models' metadata, the app's DATABASE_URL, batch mode on SQLite."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from flask import current_app, has_app_context

from memberplatform.db import Base, UTCDateTime, create_engine
from memberplatform.security.crypto import EncryptedString

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

import memberplatform.models  # noqa: E402, F401  (registers every table)

target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Write the UTC column type as a plain DateTime: migrations stay free of app imports."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    if type_ == "type" and isinstance(obj, EncryptedString):
        return "sa.Text()"
    return False


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    if has_app_context():
        return current_app.config["DATABASE_URL"]
    from memberplatform import create_app

    return create_app().config["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
