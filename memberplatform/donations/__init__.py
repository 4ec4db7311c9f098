"""Points donations (积分捐): campaigns that turn members' points into goods for a beneficiary."""
