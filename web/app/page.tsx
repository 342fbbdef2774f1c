import { PipelineList } from "@/components/pipeline-list";

export default function Home() {
  return <PipelineList />;
}
