"""What the marketer sees: the campaign report (JSON, CSV, HTML), lift, monthly closes, statements."""
