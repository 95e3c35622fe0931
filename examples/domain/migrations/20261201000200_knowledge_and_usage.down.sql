-- SPDX-License-Identifier: MIT
DROP TABLE agent_knowledge_bases;
DROP TABLE usage_records;
DROP TABLE knowledge_bases;
