"""The customer self-service page: track a waybill, file a complaint, follow it by a private
link (the web-form channel of the service desk)."""
