"""Courses and exams: enrolment with capacity and waitlist, lessons, certificates, exam seats."""
