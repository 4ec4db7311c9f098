"""Health-kit claims (健康防护包, 抗体检测试剂): limited stock, pickup codes, staff verification."""
