"""The legal-service menu (菜单式法律服务): requests answered by lawyers in private threads."""
