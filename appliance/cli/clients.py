"""`strongroom client ...`"""
import click

from appliance.cli.options import (converted, data_dir_option, emit, human_size, json_option,
                                   open_app)
from config.converters import size


@click.group()
def client():
    """Clients: the organisations whose private trees Strongroom keeps."""


@client.command("add", epilog="Example: strongroom client add acme --quota 10GiB")
@click.argument("name")
@click.option("--quota", callback=converted(size), help="Storage quota, e.g. 10GiB (default: none).")
@data_dir_option
@json_option
def add(name, quota, data_dir, as_json):
    """Create client NAME with its own encryption key and an empty tree."""
    out = open_app(data_dir).admin().add_client(name, quota)
    emit(out, as_json, lambda d: [f"client {d['name']} created"])


@client.command("list")
@data_dir_option
@json_option
def list_(data_dir, as_json):
    """List clients with their usage and quota."""
    rows = open_app(data_dir).admin().list_clients()
    emit(rows, as_json, lambda rs: [f"{'NAME':24} {'USED':>12} {'QUOTA':>12}"] +
         [f"{r['name']:24} {human_size(r['used_bytes']):>12} {human_size(r['quota_bytes']):>12}"
          for r in rs])
