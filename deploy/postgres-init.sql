-- One database per service (each service owns its data).
CREATE DATABASE consultation;
CREATE DATABASE newsfeed;
CREATE DATABASE search;
