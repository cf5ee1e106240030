"""Deterministic workers for the Conductor definitions in this folder.

Each is a plain function from a task's input to its output, the same on every run, so every
case can expect an exact output. ``HANDLERS`` serves the in-memory simulation; ``worker``
declares the same functions on a :class:`~orchestrator.worker.Worker` for the broker tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.worker import Worker

Json = Any
Handler = Callable[[dict[str, Json]], dict[str, Json]]

PROFILES = {
    "u-42": {"name": "Ada Lovelace", "country": "GB", "lifetimeSpend": 1250},
    "u-7": {"name": "Grace Hopper", "country": "US", "lifetimeSpend": 80},
}
FX_RATES = {("USD", "JPY"): 150, ("USD", "EUR"): 0.9}
SALES_TAX_PERCENT = {"CA": 8, "NY": 9}


def cents(amount: Json) -> int:
    """An amount of money in whole cents."""
    return round(float(amount) * 100)


# Orders ----------------------------------------------------------------------------------------


def validate_order(data: dict[str, Json]) -> dict[str, Json]:
    """Totals the order lines; an order without lines is invalid."""
    items = data.get("items") or []
    total = sum(cents(item["price"]) * int(item["qty"]) for item in items)
    return {
        "orderId": data["orderId"],
        "valid": bool(items),
        "total": total / 100,
        "itemCount": sum(int(item["qty"]) for item in items),
    }


def charge_card(data: dict[str, Json]) -> dict[str, Json]:
    """Captures a card payment."""
    return {"paymentId": f"ch_{data['cardLast4']}_{cents(data['amount'])}", "status": "CAPTURED"}


def charge_paypal(data: dict[str, Json]) -> dict[str, Json]:
    """Captures a PayPal payment."""
    payer = str(data["payerEmail"]).split("@", 1)[0]
    return {"paymentId": f"pp_{payer}_{cents(data['amount'])}", "status": "CAPTURED"}


def create_invoice(data: dict[str, Json]) -> dict[str, Json]:
    """Issues an invoice payable within the terms."""
    return {
        "invoiceNumber": f"INV-{data['customerId']}",
        "dueInDays": int(data.get("termsDays") or 30),
        "status": "INVOICED",
    }


def reserve_inventory(data: dict[str, Json]) -> dict[str, Json]:
    """Reserves every order line in one warehouse."""
    return {"reserved": [item["sku"] for item in data["items"]], "warehouse": "AMS-1"}


def pick_item(data: dict[str, Json]) -> dict[str, Json]:
    """Picks one order line off the shelf."""
    return {"sku": data["sku"], "picked": int(data["qty"]), "bin": f"BIN-{data['position']}"}


def generate_label(data: dict[str, Json]) -> dict[str, Json]:
    """Prints a shipping label with a carrier."""
    return {"labelId": f"LBL-{data['orderId']}", "carrier": data["carrier"]}


def ship_order(data: dict[str, Json]) -> dict[str, Json]:
    """Hands the parcel to the carrier."""
    carrier = str(data["carrier"])
    return {"trackingNumber": f"{carrier.upper()}-{data['orderId']}", "carrier": carrier}


def score_risk(data: dict[str, Json]) -> dict[str, Json]:
    """Scores the fraud risk of an amount."""
    amount = float(data["amount"])
    return {"risk": "high" if amount > 1000 else "low", "score": min(int(amount) // 10, 100)}


def queue_manual_review(data: dict[str, Json]) -> dict[str, Json]:
    """Queues an order for a fraud analyst."""
    return {"queued": True, "queue": f"fraud-{data['risk']}"}


def pay_expense(data: dict[str, Json]) -> dict[str, Json]:
    """Reimburses an employee."""
    return {"paymentRef": f"PAY-{data['expenseId']}-{cents(data['amount'])}"}


def close_account(data: dict[str, Json]) -> dict[str, Json]:
    """Closes a customer account."""
    return {"accountId": data["accountId"], "closed": True}


def record_audit(data: dict[str, Json]) -> dict[str, Json]:
    """Writes an audit entry."""
    return {"recorded": True, "entry": f"{data['event']} by {data['actor']}"}


# Notifications ---------------------------------------------------------------------------------


def send_email(data: dict[str, Json]) -> dict[str, Json]:
    """Sends an email."""
    return {"channel": "email", "to": data["to"], "subject": data["subject"], "delivered": True}


def send_sms(data: dict[str, Json]) -> dict[str, Json]:
    """Sends a text message."""
    return {"channel": "sms", "to": data["phone"], "delivered": True}


def send_push(data: dict[str, Json]) -> dict[str, Json]:
    """Sends a push notification."""
    return {"channel": "push", "to": data["deviceId"], "delivered": True}


# Data ------------------------------------------------------------------------------------------


def extract_file(data: dict[str, Json]) -> dict[str, Json]:
    """Extracts a CSV file: ten rows per character of its name, for a predictable count."""
    file = str(data["file"])
    return {"file": file, "rows": 10 * len(file)}


def load_warehouse(data: dict[str, Json]) -> dict[str, Json]:
    """Loads rows into a warehouse table."""
    return {"table": data["table"], "loaded": int(data["rows"])}


def process_record(data: dict[str, Json]) -> dict[str, Json]:
    """Converts one record's amount to cents."""
    record = data["record"]
    return {
        "id": record["id"],
        "amountCents": cents(record["amount"]),
        "position": data["position"],
    }


def submit_job(data: dict[str, Json]) -> dict[str, Json]:
    """Submits a batch job."""
    return {"jobId": f"job-{data['dataset']}"}


def check_job_status(data: dict[str, Json]) -> dict[str, Json]:
    """A job that is done from its third poll on."""
    polls = int(data["pollCount"]) + 1
    return {"jobId": data["jobId"], "state": "DONE" if polls >= 3 else "RUNNING", "polls": polls}


def fetch_job_result(data: dict[str, Json]) -> dict[str, Json]:
    """Where a finished job left its result."""
    return {"resultUrl": f"s3://results/{data['jobId']}.parquet"}


def fetch_profile(data: dict[str, Json]) -> dict[str, Json]:
    """A customer profile; an unknown customer fails the task."""
    user_id = str(data["userId"])
    if user_id not in PROFILES:
        raise LookupError(f"no profile for {user_id}")
    return {"userId": user_id, **PROFILES[user_id]}


def fetch_recommendations(data: dict[str, Json]) -> dict[str, Json]:
    """A recommendation service that is always down."""
    raise ConnectionError("recommendation service unavailable")


def fetch_fx_rate(data: dict[str, Json]) -> dict[str, Json]:
    """An exchange rate."""
    return {"rate": FX_RATES[(data["from"], data["to"])]}


def lookup_sales_tax(data: dict[str, Json]) -> dict[str, Json]:
    """A US state's sales tax rate."""
    return {"state": data["state"], "percent": SALES_TAX_PERCENT.get(data["state"], 0)}


def region_stats(data: dict[str, Json]) -> dict[str, Json]:
    """A region's score for one round of a sweep."""
    return {"region": data["region"], "round": data["round"], "score": len(data["region"]) * 10}


# Media and documents ---------------------------------------------------------------------------


def resize_image(data: dict[str, Json]) -> dict[str, Json]:
    """Renders an image in three sizes."""
    return {"assetId": data["assetId"], "operation": "resize", "renditions": ["s", "m", "l"]}


def transcode_video(data: dict[str, Json]) -> dict[str, Json]:
    """Transcodes a video into two qualities."""
    renditions = ["720p.mp4", "1080p.mp4"]
    return {"assetId": data["assetId"], "operation": "transcode", "renditions": renditions}


def extract_text(data: dict[str, Json]) -> dict[str, Json]:
    """Runs OCR over a document."""
    return {"assetId": data["assetId"], "operation": "ocr", "renditions": ["text.txt"]}


def prepare_document(data: dict[str, Json]) -> dict[str, Json]:
    """Renders a document for review."""
    return {"documentId": data["documentId"], "pages": 12}


def publish_document(data: dict[str, Json]) -> dict[str, Json]:
    """Publishes a reviewed document."""
    return {"published": True, "url": f"https://docs.example.com/{data['documentId']}"}


HANDLERS: dict[str, Handler] = {
    handler.__name__: handler
    for handler in (
        validate_order,
        charge_card,
        charge_paypal,
        create_invoice,
        reserve_inventory,
        pick_item,
        generate_label,
        ship_order,
        score_risk,
        queue_manual_review,
        pay_expense,
        close_account,
        record_audit,
        send_email,
        send_sms,
        send_push,
        extract_file,
        load_warehouse,
        process_record,
        submit_job,
        check_job_status,
        fetch_job_result,
        fetch_profile,
        fetch_recommendations,
        fetch_fx_rate,
        lookup_sales_tax,
        region_stats,
        resize_image,
        transcode_video,
        extract_text,
        prepare_document,
        publish_document,
    )
}

worker = Worker(name="conductor-defs")
for _task_type, _handler in HANDLERS.items():
    worker.task(_task_type)(_handler)
