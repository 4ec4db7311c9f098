"""Security helpers shared by every domain: write limits, field encryption, data export."""
